"""Provider bindings: one subpackage per vendor, and the neutral :mod:`._base` contract."""
