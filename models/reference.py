"""The reference networks shipped as model files (models/files/, package data) and
registered by name: ``--model vit_tiny`` is ``--model <package>/files/vit_tiny.toml``."""
from importlib import resources

from intsim.models.modelfile import model_spec_for, read_model_file
from intsim.models.registry import register_model

#: registered name -> the shipped model file it reads
REFERENCE_FILES = {"vit_tiny": "vit_tiny.toml", "har_transformer": "har_transformer.toml",
                   "har_transformer_dsads": "har_transformer_dsads.toml",
                   "har_transformer_pamap2": "har_transformer_pamap2.toml"}


def reference_file(name: str) -> str:
    """The path of a shipped model file (models/files/NAME.toml)."""
    return str(resources.files("intsim.models") / "files" / REFERENCE_FILES[name])


for _name in REFERENCE_FILES:
    register_model(model_spec_for(read_model_file(reference_file(_name)), _name))
