"""Suite-wide settings. Under CI (CI=true) hypothesis runs derandomized (the same examples on
every run, so main stays green or red for a reason) and without its slow 'explain' phase."""
import os

from hypothesis import Phase, settings

settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
if os.environ.get("CI"):
    settings.load_profile("ci")
