// The deployer's SSH key on a node: a RemoteCommand that authorises redis-ha:sshPrivateKey's
// public key, logged in with redis-ha:previousSshPrivateKey while that is set (the key the server
// knows), and takes the old one off once it has left the config (assets/ssh-keys.sh). Every other
// command on the node runs after it, with the new key.
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import { type ConnectionArgs, RemoteCommand } from "./remote-command";
import { publicKeyOf } from "./ssh";

export function sshKeyRotation(
    name: string,
    sshUser: string,
    connection: ConnectionArgs,
    sshPrivateKey: pulumi.Input<string>,
    previousSshPrivateKey: pulumi.Input<string> | undefined,
    opts: pulumi.CustomResourceOptions,
): RemoteCommand {
    // Public keys are no secret: they show in the plan, so a reviewer sees which key goes.
    const publicOf = (key: pulumi.Input<string>) => pulumi.unsecret(pulumi.output(key).apply(publicKeyOf));
    return new RemoteCommand(
        `${name}-ssh-key`,
        {
            connection: { ...connection, privateKey: previousSshPrivateKey ?? sshPrivateKey },
            create: script("ssh-keys.sh"),
            environment: { SSH_USER: sshUser, AUTHORIZE: publicOf(sshPrivateKey), RETIRE: previousSshPrivateKey ? publicOf(previousSshPrivateKey) : "" },
        },
        opts,
    );
}
