// redis.packageSource type apt, for real: a signed apt repository that the test builds itself
// (Debian's Redis packages rebuilt as version …+rha1, signed with a key it generates, served on
// the lab bridge), since redis.io cannot be reached here. A wrong key fails the run at the
// repository step with apt's reason, before any package is installed; the right one installs
// every node from the repository; destroy takes the repository off again.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { type AddressInfo } from "net";
import * as http from "http";
import * as path from "path";
import { freshStack, labConfig, labHosts, newPasswords, onHost, ROOT } from "./lab";

const SUFFIX = "+rha1";
const PACKAGES = ["redis-server", "redis-sentinel", "redis-tools"];

/**
 * Builds the repository on a lab host and returns it as a map of relative path -> contents,
 * with the armored public key it is signed with and another key that signs nothing.
 */
function buildRepository(host: string): { files: Map<string, Buffer>; key: string; otherKey: string } {
    const script = `set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apt-utils gpg-agent >/dev/null 2>&1
work=$(mktemp -d); cd "$work"; mkdir debs out
(cd debs && apt-get download -qq ${PACKAGES.join(" ")} 2>/dev/null)
for f in debs/*.deb; do
    rm -rf x; dpkg-deb -R "$f" x
    # The version, and the exact-version dependencies between these packages, get the suffix.
    sed -i -E 's/^(Version: .*)$/\\1${SUFFIX}/; /^(Depends|Breaks|Replaces):/ s/\\((= [^)]+)\\)/(\\1${SUFFIX})/g' x/DEBIAN/control
    dpkg-deb -b x "out/$(basename "$f" .deb)${SUFFIX}.deb" >/dev/null
done
mkdir -p repo/pool repo/dists/lab/main/binary-amd64; mv out/*.deb repo/pool/
cd repo
apt-ftparchive packages pool > dists/lab/main/binary-amd64/Packages
apt-ftparchive -o APT::FTPArchive::Release::Suite=lab -o APT::FTPArchive::Release::Codename=lab \\
    -o APT::FTPArchive::Release::Components=main -o APT::FTPArchive::Release::Architectures=amd64 release dists/lab > dists/lab/Release.new
mv dists/lab/Release.new dists/lab/Release
export GNUPGHOME=$(mktemp -d)
gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-gen-key 'redis-ha lab repository' ed25519 sign never 2>/dev/null
gpg --batch -q --yes --clearsign -o dists/lab/InRelease dists/lab/Release
gpg --armor --export > ../key.asc
export GNUPGHOME=$(mktemp -d)
gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-gen-key 'a key that signs nothing' ed25519 sign never 2>/dev/null
gpg --armor --export > ../other.asc
cd ..; tar -C repo -cf repo.tar . ; echo KEY; base64 -w0 key.asc; echo; echo OTHER; base64 -w0 other.asc; echo; echo TAR; base64 -w0 repo.tar; echo
cd /; rm -rf "$work"`;
    // The script on stdin; the answer (the repository, base64) is larger than onHost's buffer.
    const out = execFileSync("bash", [path.join(ROOT, "lab", "lab.sh"), "ssh", host, "bash -s"], { input: script, encoding: "utf8", maxBuffer: 256 << 20 });
    const field = (name: string) => Buffer.from(out.split(`${name}\n`)[1].split("\n")[0], "base64");
    return { files: untar(field("TAR")), key: field("KEY").toString(), otherKey: field("OTHER").toString() };
}

/** The regular files of a ustar archive. */
function untar(tar: Buffer): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
        const name = tar.toString("latin1", at, at + 100).replace(/\0.*$/s, "");
        const size = parseInt(tar.toString("latin1", at + 124, at + 136).replace(/\0.*$/s, "").trim() || "0", 8);
        const type = String.fromCharCode(tar[at + 156] || 48);
        if (type === "0") files.set(path.posix.normalize(name), tar.subarray(at + 512, at + 512 + size));
        at += 512 + Math.ceil(size / 512) * 512;
    }
    return files;
}

describe("lab package source: a signed apt repository of our own", function () {
    const hosts = labHosts();
    const passwords = newPasswords();
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let server: http.Server;
    let url = "";
    let repo: ReturnType<typeof buildRepository>;
    const requested: string[] = [];
    const run = `repo-${Date.now().toString(36)}`;
    const source = (signingKey: string) => ({ value: JSON.stringify({ maxmemory: "64mb", packageSource: { type: "apt", url, suite: "lab", signingKey } }) });
    const installed = (host: string) => onHost(host, `dpkg-query -W -f='\${Package} \${Version} \${Status}\\n' ${PACKAGES.join(" ")} 2>/dev/null | grep 'install ok installed' | cut -d' ' -f1,2 || true`).trim();

    before(async () => {
        // Hosts without the packages (a host that has them keeps them, from wherever they came):
        // what earlier tests left goes.
        for (const h of hosts) {
            onHost(h.name, `apt-mark unhold ${PACKAGES.join(" ")} >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq ${PACKAGES.join(" ")} >/dev/null 2>&1 || true`);
            assert.strictEqual(installed(h.name), "", `${h.name} still has Redis packages`);
        }
        repo = buildRepository(hosts[0].name);
        server = http.createServer((req, res) => {
            const wanted = path.posix.normalize(decodeURIComponent((req.url ?? "/").split("?")[0]).replace(/^\/+/, "")).replace(`${run}/`, "");
            const file = repo.files.get(wanted);
            requested.push(`${req.method} /${wanted} ${file ? 200 : 404}`);
            res.writeHead(file ? 200 : 404).end(req.method === "HEAD" ? undefined : file);
        });
        // On the lab bridge's own address: the hosts reach it, nothing else does. Port 80: the
        // hosts' apt goes through the lab's apt-cacher-ng, which refuses other ports.
        await new Promise<void>((r) => server.listen(80, hosts[0].ip.replace(/\.\d+$/, ".1"), () => r()));
        // A path of this run's own: the apt proxy caches by URL, and an earlier run's repository was another.
        url = `http://${(server.address() as AddressInfo).address}/${run}`;
        stack = await freshStack("lab-package-source", { ...labConfig(hosts, passwords), "redis-ha:redis": source(repo.otherKey) });
    });

    after(async () => {
        await stack?.destroy().catch(() => undefined);
        await stack?.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
        server?.close();
    });

    it("refuses the repository signed with another key at its own step, with apt's reason, before any package is installed", async () => {
        await assert.rejects(stack.up(), (e: Error) => {
            assert.match(e.message, /-apt-source/);
            assert.match(e.message, /NO_PUBKEY|not signed|signatures couldn't be verified/);
            return true;
        });
        assert.ok(requested.some((r) => / \/dists\/lab\/InRelease 200$/.test(r)), `apt never fetched the repository: ${requested.join(", ")}`);
        for (const h of hosts) {
            assert.strictEqual(installed(h.name), "", `${h.name} installed packages although the repository was refused`);
            // The failed step left nothing behind that would break the server's next apt-get update.
            assert.strictEqual(onHost(h.name, "ls /etc/apt/keyrings/redis-ha.asc /etc/apt/sources.list.d/redis-ha.sources /etc/apt/preferences.d/redis-ha 2>/dev/null | wc -l").trim(), "0", `${h.name} kept the refused repository`);
        }
    });

    it("installs every node from the repository signed with the configured key", async () => {
        await stack.setConfig("redis-ha:redis", source(repo.key));
        const up = await stack.up();
        assert.strictEqual(up.summary.result, "succeeded");
        for (const h of hosts) {
            const versions = up.outputs.nodes.value[h.name].packages as Record<string, string>;
            for (const p of PACKAGES) assert.ok(versions[p]?.endsWith(SUFFIX), `${h.name}: ${p} ${versions[p]} is not the repository's`);
            assert.match(onHost(h.name, "cat /etc/apt/sources.list.d/redis-ha.sources"), new RegExp(`^Signed-By: /etc/apt/keyrings/redis-ha\\.asc$`, "m"));
        }
        assert.ok(requested.some((r) => /\/pool\/redis-server_.*\+rha1.*\.deb 200$/.test(r)), "no package came from the repository");
    });

    it("takes the repository off on destroy, with the packages", async () => {
        await stack.destroy();
        for (const h of hosts) {
            assert.strictEqual(installed(h.name), "", `${h.name} kept packages`);
            assert.strictEqual(onHost(h.name, "ls /etc/apt/keyrings/redis-ha.asc /etc/apt/sources.list.d/redis-ha.sources /etc/apt/preferences.d/redis-ha 2>/dev/null | wc -l").trim(), "0");
        }
    });
});
