#!/usr/bin/env bash
# The router namespace's own systemd-networkd, for lab WANs with a `mode` (the daemon writes
# networkd files for those lines and has networkd reload them, as on the appliance).
#
#   ip netns exec RTR unshare --mount --propagation private ci/lib/lab-networkd.sh OVERLAY_CONF
#
# Runs in a private mount namespace of the router namespace, so this networkd, its D-Bus and
# its files are the lab's alone: /run/systemd and /run/dbus are fresh tmpfs; /sys is made
# read-only, which tells networkd there is no udev to wait for (as in a container). The D-Bus
# config has no service directories, so nothing on this machine is ever started by bus
# activation (e.g. timedated or hostnamed acting on the host). networkd runs in the foreground;
# the daemon joins this mount namespace with `nsenter --target <networkd pid>`.
set -euo pipefail
overlay_conf=$1

mount -o remount,bind,ro /sys
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/dbus
mkdir -p /run/systemd/network /run/systemd/netif /run/systemd/networkd.conf.d
chown systemd-network:systemd-network /run/systemd/netif
# The appliance's own networkd settings (keep foreign routes and rules: ours).
cp "$overlay_conf" /run/systemd/networkd.conf.d/

cat >/run/dbus/lab-system.conf <<'XML'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="false"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
XML
dbus-daemon --config-file=/run/dbus/lab-system.conf --fork --nopidfile
exec /lib/systemd/systemd-networkd
