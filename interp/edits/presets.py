"""Head sets published with a method, by name: what ``heads=NAME`` means for ACT and PASTA.

``act-llama-2-7b-chat``: the heads ACT calibrates in Llama-2-7B-chat for classification, layers 2
to 30 (GATECH-EIC/ACT, ``models/augment_index.py``, ``aug_indices_comb_classification``, read by
``atten_process_eval`` as ``[layer - 2]``).
"""

from __future__ import annotations

_ACT_CLASSIFICATION = [
    [2, 8, 12, 13, 16, 17, 20, 25], [0, 1, 2, 10, 24, 28], [1, 3, 4, 9, 10, 11, 15, 19, 23, 25, 27, 30],
    [0, 1, 3, 8, 9, 12, 13, 14, 19, 22], [1, 11, 13, 15, 17, 18, 20, 21, 22, 25, 28, 31], [7, 8, 18, 24, 25],
    [0, 2, 5, 6, 7, 8, 26], [0, 6, 7, 10, 11, 15, 17, 20, 21, 29], [1, 4, 19, 22, 23, 25, 26, 27, 31],
    [6, 8, 10, 12, 14, 15, 17, 18, 21, 26, 27, 28], [0, 4, 6, 11, 21, 24, 25, 27], [1, 4, 9, 21, 25, 26, 27],
    [0, 1, 4, 7, 9, 12, 13, 15, 19, 21, 24], [6, 9, 12, 17, 19, 21, 24, 25, 26], [0, 29], [0, 15, 19, 24, 29, 30],
    [7, 12, 22, 23], [2, 15, 16, 21, 30], [1, 2, 5, 9, 10, 15, 20, 27, 29], [17, 20, 24, 29], [2, 3, 5, 6, 13, 15, 25],
    [5, 6, 16], [1, 3, 5, 13, 20], [17, 24], [9, 14, 19, 20], [2, 29], [], [2, 14, 15, 25], [2],
]

HEAD_PRESETS: dict[str, dict[int, list[int]]] = {
    "act-llama-2-7b-chat": {layer: heads for layer, heads in enumerate(_ACT_CLASSIFICATION, start=2) if heads},
}
