"""The training pipeline: train, evaluate, register and maybe promote a classifier."""
