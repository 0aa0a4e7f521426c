"""scanbridge_hw: board profiles (hardware/boards/*.json) and their loader."""
