"""Models built on the intsim engine: ResNet-32, fully connected nets and the networks
of model files (a tiny ViT and HAR transformers for HAPT, DSADS and PAMAP2 ship as
files), registered by name in MODELS (registry.py)."""
from intsim.models.registry import MODELS, ModelSpec, model_spec, register_model
from intsim.models.fcnet import FCNet
from intsim.models.resnet import BasicBlock, ResNet, resnet32
from intsim.models.graph import Block, GraphModel
from intsim.models.modelfile import build_model, read_model_file
from intsim.models import reference  # noqa: F401  (registers vit_tiny, the har_transformer files)

__all__ = ["FCNet", "ResNet", "BasicBlock", "resnet32", "MODELS", "ModelSpec", "register_model",
           "Block", "GraphModel", "build_model", "read_model_file", "model_spec"]
