"""Write a MicroPython firmware image with esptool (v5, hyphenated commands), run as a library.

Chip detection talks to the ROM bootloader (esptool.cmds.detect_chip); the image goes at the
chip's offset (0x1000 on ESP32/ESP32-S2, 0x0 on ESP32-S3/C3); erase-flash first when asked;
write-flash checks each block's digest; verify-flash reads the flash back on request. The image
header's chip id is checked against the detected chip before anything is written.
Only the ROM bootloader cannot exist here: tests replace `detect` and `run` (see tests/test_flash_image.py)."""
from __future__ import annotations

import os
import struct
from pathlib import Path

from scanbridge_tools.flashing.errors import FlashError

# esptool chip name -> offset of a MicroPython image, the chip id in an image header
CHIPS = {
    "esp32": {"label": "ESP32", "offset": 0x1000, "image_chip_id": 0},
    "esp32s2": {"label": "ESP32-S2", "offset": 0x1000, "image_chip_id": 2},
    "esp32s3": {"label": "ESP32-S3", "offset": 0x0, "image_chip_id": 9},
    "esp32c3": {"label": "ESP32-C3", "offset": 0x0, "image_chip_id": 5},
}
IMAGE_MAGIC = 0xE9
BOOT_HINT = ("put the board in download mode: ESP32-CAM-MB: hold IO0, press RST, release IO0; "
             "ESP32-S3: hold BOOT, press RST; then try again (another program may hold the port)")


def chip_key(name: str) -> str:
    """'ESP32-S3' / 'esp32-s3' / 'ESP32' -> 'esp32s3' / 'esp32'."""
    key = name.lower().replace("-", "").replace("_", "").split(" ")[0]
    if key not in CHIPS:
        raise FlashError("unsupported_chip", "chip %r is not one scanbridge flashes (%s)" % (name, ", ".join(CHIPS)),
                         "use a board from hardware/boards/")
    return key


def image_chip(path: Path) -> str | None:
    """The chip an ESP image was built for, from its header; None when the header has no id."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise FlashError("image_missing", "%s not found" % path, "download the MicroPython .bin for the board")
    if len(head) < 16 or head[0] != IMAGE_MAGIC:
        raise FlashError("image_invalid", "%s is not an ESP firmware image (magic 0x%02x)" % (path, head[0] if head else 0),
                         "use the .bin from micropython.org/download for the board (not .uf2/.zip/.elf)")
    chip_id = struct.unpack_from("<H", head, 12)[0]
    for key, c in CHIPS.items():
        if c["image_chip_id"] == chip_id:
            return key
    return None


def detect(port: str, baud: int = 115200) -> dict:
    """Ask the ROM bootloader: {"chip", "label", "mac", "flash_size"}. Needs download mode."""
    return detect_with_attempts(port, baud)


def detect_with_attempts(port: str, baud: int = 115200, attempts: int = 7) -> dict:
    if not os.path.exists(port) and not port.startswith(("COM", "rfc2217:")):
        raise FlashError("port_not_found", "%s does not exist" % port, "plug the board in; `scanbridge ports`")
    from esptool import cmds
    from esptool.util import FatalError
    try:
        esp = cmds.detect_chip(port=port, baud=baud, connect_attempts=attempts)
    except FatalError as e:
        raise FlashError("no_bootloader", "no ESP ROM bootloader answers on %s (%s)" % (port, e), BOOT_HINT)
    except OSError as e:
        raise FlashError("port_busy", "cannot open %s: %s" % (port, e), "close programs using the port")
    try:
        mac = ":".join("%02x" % b for b in esp.read_mac())
        try:
            flash_size = cmds.detect_flash_size(esp)
        except Exception:  # some clones do not report it; flashing still works with "keep"
            flash_size = None
        return {"chip": chip_key(esp.CHIP_NAME), "label": esp.CHIP_NAME, "mac": mac, "flash_size": flash_size}
    finally:
        esp._port.close()


def esptool_commands(chip: str, port: str, image: Path, offset: int | None = None, baud: int = 460800,
                     erase: bool = False, verify: bool = False) -> list[list[str]]:
    """The esptool argv lists to run in order (v5 spelling: write-flash, erase-flash, ...)."""
    key = chip_key(chip)
    off = CHIPS[key]["offset"] if offset is None else offset
    base = ["--chip", key, "--port", port, "--baud", str(baud)]
    cmds = []
    if erase:
        cmds.append(base + ["erase-flash"])
    cmds.append(base + ["write-flash", "--flash-mode", "keep", "--flash-size", "detect", "0x%x" % off, str(image)])
    if verify:
        cmds.append(base + ["verify-flash", "0x%x" % off, str(image)])
    return cmds


def run_esptool(argv: list[str]):
    """esptool in this process (the library entry point), its failures as FlashError."""
    import esptool
    from esptool.util import FatalError
    try:
        esptool.main(argv)
    except FatalError as e:
        text = str(e)
        if "verify" in argv and ("mismatch" in text.lower() or "differ" in text.lower()):
            raise FlashError("verify_failed", "flash contents differ from the image: %s" % text,
                             "erase and write again (--erase); a weak 5 V supply can corrupt writes")
        raise FlashError("esptool_failed", "esptool %s: %s" % (" ".join(a for a in argv if not a.startswith("/")), text),
                         BOOT_HINT)
    except SystemExit as e:  # argparse inside esptool: a usage error is our bug, say it plainly
        raise FlashError("esptool_failed", "esptool exited with %s for %s" % (e.code, argv))
    except OSError as e:
        raise FlashError("device_timeout", "the port went away during esptool: %s" % e, "check the cable, then retry")


def flash_image(port: str, image: Path, board_chip: str | None = None, offset: int | None = None,
                baud: int = 460800, erase: bool = False, verify: bool = True, detect_fn=None, run_fn=None,
                step=None) -> dict:
    """Detect the chip, check the image and the board profile agree with it, write, verify."""
    step = step or (lambda *a: None)
    detect_fn = detect_fn or detect
    run_fn = run_fn or run_esptool
    image = Path(image)
    img_chip = image_chip(image)
    step("detect")
    found = detect_fn(port)
    chip = found["chip"]
    if board_chip and chip_key(board_chip) != chip:
        raise FlashError("wrong_board_profile", "the board profile is for %s but the board is %s"
                         % (CHIPS[chip_key(board_chip)]["label"], found["label"]),
                         "pick the profile for this board (`scanbridge flash boards`)")
    if img_chip is not None and img_chip != chip:
        raise FlashError("image_chip_mismatch", "%s is built for %s, the board is %s"
                         % (image.name, CHIPS[img_chip]["label"], found["label"]),
                         "download the MicroPython image for %s" % found["label"])
    commands = esptool_commands(chip, port, image, offset, baud, erase, verify)
    for argv in commands:
        step(argv[argv.index(str(baud)) + 1])
        run_fn(argv)
    off = CHIPS[chip]["offset"] if offset is None else offset
    return {"port": port, "chip": chip, "mac": found["mac"], "flash_size": found.get("flash_size"),
            "offset": "0x%x" % off, "image": str(image), "erased": erase, "verified": verify,
            "esptool": [" ".join(a) for a in commands]}
