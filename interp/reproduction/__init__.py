"""The paper's experiment end to end (``interp reproduce``): :mod:`.pipeline` runs its steps,
:mod:`.claims` sets each of the paper's claims beside what was measured."""
