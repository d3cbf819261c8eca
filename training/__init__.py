"""Training and fine-tuning of the Siamese trackers (Qt-free)."""
