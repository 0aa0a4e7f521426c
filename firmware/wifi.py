# WiFi station management: joins the strongest known network from the config, rejoins after a
# loss with capped, jittered backoff, and reports its state for STATUS. The radio itself is the
# board HAL's WLAN object (network.WLAN(network.STA_IF) on an ESP32; a fake in tests), used only
# through active(), scan(), connect(), disconnect(), isconnected(), status(), ifconfig(), config().
import random

try:
    import asyncio
except ImportError:
    import uasyncio as asyncio  # type: ignore

from scanbridge_fw.mqtt import backoff_ms, ticks_diff, ticks_ms


def order_networks(known, seen):
    """Known networks ordered by signal strength in a scan; unseen ones (hidden SSIDs) last.

    known: [{"ssid": .., "password": ..}]; seen: wlan.scan() tuples (ssid bytes, bssid, channel,
    rssi, ...)."""
    rssi = {}
    for entry in seen:
        try:
            name = bytes(entry[0]).decode()
        except (UnicodeError, TypeError, IndexError):
            continue
        if name not in rssi or entry[3] > rssi[name]:
            rssi[name] = entry[3]
    visible = [n for n in known if n["ssid"] in rssi]
    visible.sort(key=lambda n: -rssi[n["ssid"]])
    hidden = [n for n in known if n["ssid"] not in rssi]
    return visible + hidden


class WiFi:
    """Keeps the station connected to one of `networks` (list of {"ssid", "password"})."""

    def __init__(self, wlan, networks, join_timeout_ms=15000, check_ms=2000, backoff=(1000, 60000)):
        if not networks:
            raise ValueError("no_wifi_networks")
        self.wlan = wlan
        self.networks = list(networks)
        self.join_timeout_ms = join_timeout_ms
        self.check_ms = check_ms
        self.backoff = backoff
        self.ssid = None
        self.attempts = 0
        self.joins = 0
        self.losses = 0
        self.last_error = None
        self.connected_since = None
        self.up = asyncio.Event()
        self._stop = False

    def status(self):
        """Fields for the STATUS message."""
        s = {"wifi": self.wlan.isconnected(), "ssid": self.ssid, "joins": self.joins,
             "losses": self.losses, "attempts": self.attempts, "wifi_error": self.last_error}
        if s["wifi"]:
            try:
                s["ip"] = self.wlan.ifconfig()[0]
                s["rssi"] = self.wlan.status("rssi")
            except (OSError, ValueError, TypeError):
                pass
        return s

    def stop(self):
        self._stop = True

    async def join_once(self):
        """Try every known network once, strongest first; True when connected."""
        self.wlan.active(True)
        try:
            seen = self.wlan.scan()
        except OSError:
            seen = []
        for net in order_networks(self.networks, seen):
            self.attempts += 1
            try:
                self.wlan.connect(net["ssid"], net.get("password", ""))
            except OSError as e:
                self.last_error = "connect_failed: %s" % e
                continue
            t0 = ticks_ms()
            while ticks_diff(ticks_ms(), t0) < self.join_timeout_ms:
                if self.wlan.isconnected():
                    self.ssid = net["ssid"]
                    self.joins += 1
                    self.connected_since = ticks_ms()
                    self.last_error = None
                    return True
                await asyncio.sleep(0.1)
            self.last_error = "join_timeout: %s" % net["ssid"]
            try:
                self.wlan.disconnect()
            except OSError:
                pass
        return False

    async def run(self):
        """Connect, watch, reconnect; sets/clears `up`. Runs until stop()."""
        failures = 0
        while not self._stop:
            if self.wlan.isconnected():
                self.up.set()
                await asyncio.sleep(self.check_ms / 1000)
                continue
            if self.up.is_set():
                self.up.clear()
                self.losses += 1
                self.ssid = None
            if await self.join_once():
                failures = 0
                self.up.set()
                continue
            delay = backoff_ms(failures, self.backoff[0], self.backoff[1], random.getrandbits(16))
            failures += 1
            await asyncio.sleep(delay / 1000)
