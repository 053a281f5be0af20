"""genrecraft's Dora/Hydra configs, found through ``hydra_plugins/genrecraft_searchpath``."""
