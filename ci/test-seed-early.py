#!/usr/bin/env python3
"""The seed reading of overlay/usr/lib/routeros-image/seed-early, without root or QEMU.

Runs its functions against a temporary directory: which write_files entries it writes (and
how it decodes them), the netplan file it makes of a network-config, what it refuses, which
ports it renames (on a made-up /sys/class/net and udev database), and that a provisioned
instance is left alone. The commands it runs (netplan's generator, ip) are recorded here
instead; the image test (ci/image-test.sh) boots the image
with a seed and checks the real thing: port names, the first config, a routed LAN client.
"""

import base64
import gzip
import importlib.machinery
import importlib.util
import os
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "overlay", "usr", "lib", "routeros-image", "seed-early")


def load():
    loader = importlib.machinery.SourceFileLoader("seed_early", SCRIPT)
    spec = importlib.util.spec_from_loader("seed_early", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class SeedEarly(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.m = load()
        self.m.CONFIG_DIR = os.path.join(self.root, "opt/routeros/config") + "/"
        self.m.NETPLAN = os.path.join(self.root, "etc/netplan/50-cloud-init.yaml")
        self.m.FACTORY_NETPLAN = os.path.join(self.root, "etc/netplan/10-routeros-default.yaml")
        self.m.DONE_ID = os.path.join(self.root, "instance-id")
        # A made-up /sys/class/net and udev database (rename_ports reads them).
        self.m.SYS_NET = os.path.join(self.root, "sys/class/net")
        self.m.UDEV_DATA = os.path.join(self.root, "run/udev/data")
        os.makedirs(self.m.SYS_NET)
        os.makedirs(self.m.UDEV_DATA)
        self.ran = []
        self.argvs = []

        self.inputs = []

        def run(argv, input=None, **_):
            self.ran.append(argv[0])
            self.argvs.append(list(argv))
            self.inputs.append(input)
            return subprocess.CompletedProcess(argv, 0, "", "")

        self.m.subprocess.run = run

    def tearDown(self):
        self.tmp.cleanup()

    def config(self, name="routeros.toml"):
        return os.path.join(self.m.CONFIG_DIR, name)

    def test_writes_only_router_config_files(self):
        ud = f"""#cloud-config
write_files:
  - path: {self.config()}
    permissions: "0640"
    content: |
      [lan]
      interface = "lan"
  - path: {self.root}/etc/other.conf
    content: not ours
  - path: {self.config("late.toml")}
    defer: true
    content: deferred to cloud-init's final stage
""".encode()
        self.m.apply_config_files(ud)
        with open(self.config()) as f:
            self.assertEqual(f.read(), '[lan]\ninterface = "lan"\n')
        self.assertEqual(os.stat(self.config()).st_mode & 0o777, 0o640)
        self.assertFalse(os.path.exists(f"{self.root}/etc/other.conf"))
        self.assertFalse(os.path.exists(self.config("late.toml")))

    def test_decodes_base64_and_gzip(self):
        text = b"[health_check]\ncheck_interval = 1\n"
        b64 = base64.b64encode(text).decode()
        gz = base64.b64encode(gzip.compress(text)).decode()
        ud = f"""#cloud-config
write_files:
  - {{path: {self.config("a.toml")}, encoding: b64, content: {b64}}}
  - {{path: {self.config("b.toml")}, encoding: gz+b64, content: {gz}}}
""".encode()
        self.m.apply_config_files(ud)
        for name in ("a.toml", "b.toml"):
            with open(self.config(name), "rb") as f:
                self.assertEqual(f.read(), text, name)

    def test_unknown_encoding_is_an_error(self):
        ud = f"#cloud-config\nwrite_files:\n  - {{path: {self.config()}, encoding: rot13, content: x}}\n"
        with self.assertRaisesRegex(ValueError, "unknown encoding 'rot13'"):
            self.m.apply_config_files(ud.encode())
        self.assertFalse(os.path.exists(self.config()))

    def test_not_cloud_config_leaves_it_to_cloud_init(self):
        self.m.apply_config_files(b"#!/bin/sh\necho hello\n")
        self.assertFalse(os.path.exists(self.m.CONFIG_DIR))

    def test_network_config_becomes_netplan(self):
        os.makedirs(os.path.dirname(self.m.FACTORY_NETPLAN))
        open(self.m.FACTORY_NETPLAN, "w").close()
        nc = b"""version: 2
ethernets:
  lan:
    match: {macaddress: "52:54:00:52:00:03"}
    set-name: lan
    addresses: [192.168.1.1/24]
"""
        self.m.apply_network(nc)
        with open(self.m.NETPLAN) as f:
            doc = self.m.yaml.safe_load(f)
        self.assertEqual(doc["network"]["version"], 2)
        self.assertEqual(doc["network"]["ethernets"]["lan"]["match"]["macaddress"], "52:54:00:52:00:03")
        self.assertEqual(os.stat(self.m.NETPLAN).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(self.m.FACTORY_NETPLAN), "the factory default goes")
        self.assertEqual(self.ran[0], self.m.NETPLAN_GENERATE)

    def port(self, name, mac, index, udev_done=True):
        d = os.path.join(self.m.SYS_NET, name)
        os.makedirs(d)
        for f, text in (("address", mac), ("ifindex", str(index))):
            with open(os.path.join(d, f), "w") as fh:
                fh.write(text + "\n")
        if udev_done:
            open(os.path.join(self.m.UDEV_DATA, f"n{index}"), "w").close()

    ETHERNETS = {"lan": {"match": {"macaddress": "52:54:00:52:00:03"}, "set-name": "lan"},
                 "wan1": {"match": {"macaddress": "52:54:00:52:00:04"}, "set-name": "wan1"}}

    def test_renames_the_ports_udev_named_before(self):
        self.port("enp0s2", "52:54:00:52:00:03", 2)
        self.port("wan1", "52:54:00:52:00:04", 3)  # named by its .link file already
        self.port("enp0s9", "52:54:00:52:00:99", 4)  # not in the seed
        self.m.rename_ports(self.ETHERNETS)
        self.assertEqual(self.argvs, [["ip", "-batch", "-"]], "one ip(8) for all the ports")
        self.assertEqual(self.inputs, ["link set dev enp0s2 down\nlink set dev enp0s2 name lan\n"])

    def test_nothing_to_rename_runs_nothing(self):
        self.port("lan", "52:54:00:52:00:03", 2)
        self.m.rename_ports(self.ETHERNETS)
        self.assertEqual(self.argvs, [])

    def test_waits_for_udev_only_on_the_seeds_ports(self):
        # wan1 not processed yet: udev applies its .link (renames it) a moment later.
        self.port("enp0s2", "52:54:00:52:00:03", 2)
        self.port("enp0s3", "52:54:00:52:00:04", 3, udev_done=False)
        self.port("enp0s9", "52:54:00:52:00:99", 4, udev_done=False)  # never: not waited for

        def udev():
            os.rename(os.path.join(self.m.SYS_NET, "enp0s3"), os.path.join(self.m.SYS_NET, "wan1"))
            open(os.path.join(self.m.UDEV_DATA, "n3"), "w").close()

        timer = threading.Timer(0.3, udev)
        timer.start()
        self.m.UDEV_WAIT = 5
        started = time.monotonic()
        self.m.rename_ports(self.ETHERNETS)
        timer.join()
        self.assertLess(time.monotonic() - started, 4, "returned once udev was done with wan1")
        self.assertEqual(self.inputs, ["link set dev enp0s2 down\nlink set dev enp0s2 name lan\n"],
                         "wan1 left to udev")

    def test_gives_up_waiting_for_udev(self):
        self.port("enp0s2", "52:54:00:52:00:03", 2, udev_done=False)
        self.m.UDEV_WAIT = 0.3
        self.m.rename_ports(self.ETHERNETS)
        self.assertEqual(self.inputs, ["link set dev enp0s2 down\nlink set dev enp0s2 name lan\n"])

    def test_network_wrapped_form_too(self):
        self.m.apply_network(b"network:\n  version: 2\n  ethernets: {}\n")
        self.assertTrue(os.path.exists(self.m.NETPLAN))

    def test_network_version_1_is_ignored(self):
        self.m.apply_network(b"version: 1\nconfig: []\n")
        self.assertFalse(os.path.exists(self.m.NETPLAN))
        self.assertEqual(self.ran, [])

    def test_provisioned_instance_is_left_alone(self):
        seed = os.path.join(self.root, "seed")
        os.makedirs(seed)
        for name, text in (("meta-data", "instance-id: box-1\n"),
                           ("user-data", f"#cloud-config\nwrite_files:\n  - {{path: {self.config()}, content: x}}\n"),
                           ("network-config", "version: 2\nethernets: {}\n")):
            with open(os.path.join(seed, name), "w") as f:
                f.write(text)
        self.m.SEED_DIRS = (seed,)
        with open(self.m.DONE_ID, "w") as f:
            f.write("box-1\n")
        self.assertEqual(self.m.main(), 0)
        self.assertFalse(os.path.exists(self.config()))
        self.assertFalse(os.path.exists(self.m.NETPLAN))
        # A new instance-id is a new device to provision.
        with open(os.path.join(seed, "meta-data"), "w") as f:
            f.write("instance-id: box-2\n")
        self.assertEqual(self.m.main(), 0)
        self.assertTrue(os.path.exists(self.config()))
        self.assertTrue(os.path.exists(self.m.NETPLAN))


if __name__ == "__main__":
    unittest.main(verbosity=2)
