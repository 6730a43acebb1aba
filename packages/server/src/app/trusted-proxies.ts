import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Names `TRUST_PROXY` accepts for common ranges. */
const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/**
 * The proxies (a balancer such as nginx) whose `X-Forwarded-For` the server
 * believes (`TRUST_PROXY`). Everything else is ignored: a client that sends
 * its own `X-Forwarded-For` straight to a node, or through a proxy that is
 * not listed, is known by the address of its TCP connection.
 */
export interface TrustedProxies {
  /** The entries as configured. */
  readonly entries: readonly string[];
  /** Whether `address` is one of the trusted proxies. */
  trusts(address: string | undefined): boolean;
  /**
   * The client's address: the connection's, or, while that is a trusted
   * proxy, the next address to its left in `X-Forwarded-For` (the first
   * untrusted hop; the leftmost when every hop is trusted).
   */
  clientAddress(req: IncomingMessage): string | undefined;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function normalizeAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const a = address.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : a;
}

function addEntry(list: BlockList, entry: string): boolean {
  const [addr = '', bits, ...rest] = entry.split('/');
  const family = isIP(addr);
  if (family === 0 || rest.length > 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) {
    list.addAddress(addr, type);
    return true;
  }
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) return false;
  list.addSubnet(addr, prefix, type);
  return true;
}

/**
 * Parses `TRUST_PROXY`: comma-separated addresses, CIDR ranges and the
 * names `loopback`, `private`, `linklocal`. Returns the problem as a string.
 * @example parseTrustedProxies('loopback,10.0.0.0/8')
 */
export function parseTrustedProxies(value: string): TrustedProxies | string {
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) return 'TRUST_PROXY must list at least one address, CIDR range or name (loopback, private, linklocal)';
  const list = new BlockList();
  for (const entry of entries) {
    const ranges = NAMED[entry.toLowerCase()] ?? [entry];
    for (const r of ranges) {
      if (!addEntry(list, r)) return `TRUST_PROXY entries must be IP addresses, CIDR ranges (10.0.0.0/8) or loopback, private, linklocal (bad entry '${entry}')`;
    }
  }
  const trusts = (address: string | undefined): boolean => {
    const a = normalizeAddress(address);
    const family = a === undefined ? 0 : isIP(a);
    return family !== 0 && list.check(a!, family === 4 ? 'ipv4' : 'ipv6');
  };
  return {
    entries,
    trusts,
    clientAddress(req) {
      let addr = normalizeAddress(req.socket.remoteAddress);
      if (!trusts(addr)) return addr;
      const header = req.headers['x-forwarded-for'];
      const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((h) => h.trim()).filter(Boolean);
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = normalizeAddress(hops[i]);
        // A malformed hop ends the chain: the last address known good is the answer.
        if (hop === undefined || isIP(hop) === 0) return addr;
        addr = hop;
        if (!trusts(addr)) return addr;
      }
      return addr;
    },
  };
}

/** The connection's own address: what the server uses when no proxy is trusted. */
export function socketAddressOf(req: IncomingMessage): string | undefined {
  return normalizeAddress(req.socket.remoteAddress);
}
