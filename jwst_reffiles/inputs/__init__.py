"""Stage 1: the inputs: catalog (headers -> master table) and groups."""

from .catalog import Catalog, InputError, build_catalog, collect_files, observation_mjd
from .grouping import DEFAULT_GROUP_BY, Grouping, InputGroup, Member, hold_out, make_groups

__all__ = ["Catalog", "InputError", "build_catalog", "collect_files", "observation_mjd",
           "DEFAULT_GROUP_BY", "Grouping", "InputGroup", "Member", "make_groups", "hold_out"]
