// IPv4 addresses and networks, for the checks of the stack config (components/config.ts).
import { z } from "zod";

const isIpv4 = (s: string) => z.ipv4().safeParse(s).success;

/** An IPv4 address as an unsigned 32-bit number. */
export const ipv4Number = (ip: string) => ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
export const ipv4String = (n: number) => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join(".");
export const netmask = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);

export interface Ipv4Network {
    base: number;
    bits: number;
}
export const networkText = (net: Ipv4Network) => `${ipv4String(net.base)}/${net.bits}`;
export const inNetwork = (ip: string, net: Ipv4Network) => (ipv4Number(ip) & netmask(net.bits)) >>> 0 === net.base;

/** `10.211.99.0/24` → the network, or what is wrong with it. */
export function parseNetwork(cidr: string): Ipv4Network | string {
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
    if (!m || !isIpv4(m[1])) return "must be an IPv4 network such as 10.211.99.0/24";
    const bits = Number(m[2]);
    if (bits < 8 || bits > 30) return `has a /${bits} prefix; use /8 to /30, e.g. 10.211.99.0/24`;
    const base = (ipv4Number(m[1]) & netmask(bits)) >>> 0;
    if (base !== ipv4Number(m[1])) return `has host bits set; write the network itself, ${networkText({ base, bits })}`;
    return { base, bits };
}

/** The smallest network (at most a /30) holding every address, for examples in messages. */
export function coveringNetwork(ips: string[]): string {
    const numbers = ips.map(ipv4Number);
    let bits = 30;
    while (bits > 0 && numbers.some((x) => (x & netmask(bits)) >>> 0 !== (numbers[0] & netmask(bits)) >>> 0)) bits--;
    return networkText({ base: (numbers[0] & netmask(bits)) >>> 0, bits });
}

/** Why an address cannot be a node's or a VIP's (loopback, multicast…), or undefined. */
export function unusableAddress(ip: string, network?: Ipv4Network): string | undefined {
    const classes: [string, Ipv4Network][] = [
        ["the unspecified address", { base: 0, bits: 32 }],
        ["the broadcast address", { base: 0xffffffff, bits: 32 }],
        ["a loopback address (127.0.0.0/8)", { base: 0x7f000000, bits: 8 }],
        ["a link-local address (169.254.0.0/16)", { base: 0xa9fe0000, bits: 16 }],
        ["a multicast address (224.0.0.0/4)", { base: 0xe0000000, bits: 4 }],
    ];
    if (network) {
        classes.push(
            [`the network address of redis-ha:proxy.network (${networkText(network)})`, { base: network.base, bits: 32 }],
            [`the broadcast address of redis-ha:proxy.network (${networkText(network)})`, { base: (network.base | ~netmask(network.bits)) >>> 0, bits: 32 }],
        );
    }
    return classes.find(([, net]) => inNetwork(ip, net))?.[0];
}
