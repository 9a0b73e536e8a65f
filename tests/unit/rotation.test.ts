// Credential rotation, the parts that need no server: the stdin lines that carry a password being
// retired next to the new one, and the public key that ssh-keys.sh authorises.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { rotatingSecretLines } from "../../components/rotation";
import { publicKeyOf } from "../../components/ssh";
import { KEY } from "./fixtures";
import { outputOf } from "./mocks";

describe("credential rotation", () => {
    it("sends each retiring password as previous-<user>, after the current ones, and only for the users given", async () => {
        const lines = rotatingSecretLines({ admin: "admin-new-0123456789", app: "app-new-0123456789" }, { appPassword: "app-old-0123456789", replicationPassword: "repl-old-0123456789" }, {
            admin: "adminPassword",
            app: "appPassword",
        });
        assert.ok(await pulumi.isSecret(lines), "the lines must be secret");
        assert.strictEqual(await outputOf(lines), "admin admin-new-0123456789\napp app-new-0123456789\nprevious-app app-old-0123456789\n");
    });

    it("sends the current passwords alone when none is retiring, exactly as before rotation existed", async () => {
        assert.strictEqual(await outputOf(rotatingSecretLines({ admin: "admin-new-0123456789" }, {}, { admin: "adminPassword" })), "admin admin-new-0123456789\n");
    });

    it("derives the public key exactly as ssh-keygen -y does", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rha-key-"));
        try {
            fs.writeFileSync(path.join(dir, "key"), KEY, { mode: 0o600 });
            const expected = execFileSync("ssh-keygen", ["-y", "-f", path.join(dir, "key")], { encoding: "utf8" }).trim().split(" ").slice(0, 2).join(" ");
            assert.strictEqual(publicKeyOf(KEY), expected);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
        assert.throws(() => publicKeyOf("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), /not a usable SSH private key/);
    });
});
