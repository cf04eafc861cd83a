"""Models built on the intsim engine: ResNet-32 and fully connected nets,
registered by name in MODELS (registry.py)."""
from intsim.models.registry import MODELS, ModelSpec, register_model
from intsim.models.fcnet import FCNet
from intsim.models.resnet import BasicBlock, ResNet, resnet32

__all__ = ["FCNet", "ResNet", "BasicBlock", "resnet32", "MODELS", "ModelSpec", "register_model"]
