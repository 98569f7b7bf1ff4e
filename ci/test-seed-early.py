#!/usr/bin/env python3
"""The seed reading of overlay/usr/lib/routeros-image/seed-early, without root or QEMU.

Runs its functions against a temporary directory: which write_files entries it writes (and
how it decodes them), the netplan file it makes of a network-config, what it refuses, and
that a provisioned instance is left alone. The commands it runs (netplan's generator,
udevadm, ip) are recorded here instead; the image test (ci/image-test.sh) boots the image
with a seed and checks the real thing: port names, the first config, a routed LAN client.
"""

import base64
import gzip
import importlib.machinery
import importlib.util
import os
import subprocess
import tempfile
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
        self.ran = []

        def run(argv, **_):
            self.ran.append(argv[0])
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
