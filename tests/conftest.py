"""Shared test settings. Tests use tiny real models; one thread each keeps them quick on a busy 2-core box."""
import torch

torch.set_num_threads(1)
