"""The hardware folder: every board profile validates, the udev rule covers every USB id the
discovery code knows, the wiring doc names the profiles' pins, the BOM stays under 15 USD."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scanbridge.link.discovery import known_ids
from scanbridge_hw import profiles

HW = Path(__file__).resolve().parents[1] / "hardware"
RULES = HW / "99-scanbridge.rules"


def test_every_profile_validates():
    ids = profiles.ids()
    assert {"ai-thinker-esp32-cam", "freenove-esp32-s3-wroom-cam"} <= set(ids)
    for p in profiles.load_all():
        assert p["camera"]["model"] and p["serial"]["usb_ids"]


def test_schema_doc_lists_every_profile_field():
    doc = (HW / "boards" / "README.md").read_text()
    for p in profiles.load_all():
        for key in p:
            assert "`%s`" % key in doc, "hardware/boards/README.md does not describe %r" % key


def _rule_ids():
    text = RULES.read_text()
    return {(int(v, 16), int(p, 16)) for v, p in
            re.findall(r'ATTRS\{idVendor\}=="([0-9a-f]{4})",\s*ATTRS\{idProduct\}=="([0-9a-f]{4})"', text)}


def test_udev_rule_covers_every_known_usb_id():
    missing = set(known_ids()) - _rule_ids()
    assert not missing, "add to hardware/99-scanbridge.rules: %s" % ["%04x:%04x" % m for m in sorted(missing)]


def test_udev_rule_lines_are_well_formed():
    ops = re.compile(r'^[A-Z_]+(\{[^}]+\})?(==|!=|=|\+=|:=)"[^"]*"$')
    for n, line in enumerate(RULES.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r",\s*", line):
            assert ops.match(part), "line %d: %r" % (n, part)
    assert 'SYMLINK+="scanbridge' in RULES.read_text()


@pytest.mark.skipif(not shutil.which("udevadm"), reason="udevadm not installed")
def test_udevadm_accepts_the_rule():
    r = subprocess.run(["udevadm", "verify", str(RULES)], capture_output=True, text=True)
    if "Unknown command" in r.stderr or "unknown" in r.stderr.lower() and "verify" in r.stderr:
        pytest.skip("this udevadm has no verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_wiring_names_every_added_pin_of_every_profile():
    doc = (HW / "wiring.md").read_text()
    for p in profiles.load_all():
        pins = [led["pin"] for led in p["leds"].values() if led["pin"] >= 0]
        if p["buzzer"]:
            pins.append(p["buzzer"]["pin"])
        section = doc.split("`%s`" % p["id"], 1)[1]
        for pin in pins:
            assert "GPIO%d" % pin in section, "%s: GPIO%d missing in wiring.md" % (p["id"], pin)


def test_bom_totals_are_under_15_usd():
    totals = [float(x) for x in re.findall(r"\|\s*\*\*total\*\*\s*\|[^|]*\|\s*\*\*([0-9.]+)\*\*", (HW / "BOM.md").read_text())]
    assert len(totals) == 2
    assert all(t < 15.0 for t in totals), totals


def test_bom_lines_add_up_to_the_totals():
    text = (HW / "BOM.md").read_text()
    for section in text.split("\n## ")[1:]:
        rows = [l for l in section.splitlines() if l.startswith("|") and not l.startswith("|---")][1:]
        prices = []
        total = None
        for r in rows:
            cells = [c.strip() for c in r.strip("|").split("|")]
            if "**total**" in cells[1]:
                total = float(cells[3].strip("*"))
            else:
                prices.append(float(cells[3]))
        assert total is not None and abs(sum(prices) - total) < 0.005, (section[:40], sum(prices), total)
