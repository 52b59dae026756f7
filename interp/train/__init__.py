"""Fine-tuning, and what the two trainers share."""
