// Server scripts on their own, on a lab host: cases a whole deployment would not show.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { labHosts, onHost, runAsset } from "./lab";

/** Reboots a lab host from inside and returns once it is up again (its /run is new). */
function reboot(host: string) {
    onHost(host, "touch /run/before-reboot");
    try {
        onHost(host, "systemctl reboot");
    } catch {
        // the connection may drop as the host goes down
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
        try {
            onHost(host, "test ! -e /run/before-reboot && systemctl is-system-running --wait >/dev/null; test ! -e /run/before-reboot");
            return;
        } catch {
            if (Date.now() > deadline) throw new Error(`${host} did not come back from a reboot within 60 s`);
            execFileSync("sleep", ["0.5"]);
        }
    }
}

describe("lab: server scripts", function () {
    const host = labHosts()[0].name;
    const env = { THP: "never", OVERCOMMIT: "1", SOMAXCONN: "2048", SWAPPINESS: "10" };

    it("kernel-tuning.sh warns about a knob the host will not change, and still succeeds", async () => {
        // Like a host whose vm.swappiness is read-only: remount the lab's emulated knob read-only.
        onHost(host, "echo 60 > /proc/sys/vm/swappiness && mount -o remount,bind,ro /proc/sys/vm/swappiness");
        try {
            const report = JSON.parse(await runAsset(host, "kernel-tuning.sh", env));
            assert.strictEqual(report.somaxconn, "2048");
            assert.strictEqual(report.overcommitMemory, "1");
            assert.strictEqual(report.swappiness, "60");
            assert.strictEqual(report.warnings.length, 1);
            assert.match(report.warnings[0], /^vm\.swappiness stays 60: this host does not let us set it to 10$/);
            assert.match(onHost(host, "cat /etc/sysctl.d/60-redis-ha.conf"), /^vm\.swappiness = 10$/m);
        } finally {
            onHost(host, "mount -o remount,bind,rw /proc/sys/vm/swappiness");
            await runAsset(host, "kernel-tuning-remove.sh", {});
        }
    });

    it("kernel-tuning.sh persists its settings across a reboot", async () => {
        try {
            await runAsset(host, "kernel-tuning.sh", env);
            reboot(host);
            const values = onHost(host, "cat /proc/sys/vm/overcommit_memory /proc/sys/net/core/somaxconn /proc/sys/vm/swappiness /sys/kernel/mm/transparent_hugepage/enabled");
            assert.deepStrictEqual(values.trim().split("\n"), ["1", "2048", "10", "never"]);
        } finally {
            await runAsset(host, "kernel-tuning-remove.sh", {});
        }
    });
});
