"""Models built on the intsim engine: ResNet-32 and fully connected nets."""
from intsim.models.fcnet import FCNet
from intsim.models.resnet import BasicBlock, ResNet, resnet32

__all__ = ["FCNet", "ResNet", "BasicBlock", "resnet32"]
