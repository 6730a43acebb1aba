import type { ClientInfo, JsonValue } from 'realtime-message-protocol';

/**
 * How a channel subscriber's Centrifugo `ClientInfo` lives in the presence
 * room of its channel (a channel's presence is the room of the same name,
 * SPEC §9), so that every node, and Socket.IO members, see the same thing:
 *
 * - **user**: the user id; anonymous connections (Centrifugo's user `""`,
 *   which a room cannot hold) are all members under {@link ANONYMOUS_USER_ID},
 *   so they count as one user in `num_users`, as in Centrifugo. That id is
 *   reserved: no token, connect proxy or Socket.IO client may claim it, and
 *   it has no user status.
 * - **state**: `conn_info` itself when it is a JSON object (Socket.IO members
 *   see it as the member's state), else `{ conn_info }`; with a `chan_info`,
 *   also `{ chan_info }`. A `conn_info` object that has a key `conn_info` or
 *   `chan_info` is stored whole under `conn_info`, so the mapping back is
 *   exact.
 *
 * Mapped back ({@link clientInfoOf}), a Socket.IO member's state is its
 * `conn_info`, so Centrifugo clients see it too.
 */
export const ANONYMOUS_USER_ID = '~anonymous';

type State = Record<string, JsonValue>;

function isObject(v: JsonValue | undefined): v is State {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The presence user id of a connection's user (`''`: anonymous). */
export function presenceUserOf(user: string): string {
  return user === '' ? ANONYMOUS_USER_ID : user;
}

/** The presence state of a subscriber with this `conn_info` and `chan_info` (see {@link ANONYMOUS_USER_ID}). */
export function presenceStateOf(connInfo: JsonValue | undefined, chanInfo: JsonValue | undefined): State {
  let state: State = {};
  if (connInfo !== undefined && connInfo !== null) {
    state = isObject(connInfo) && !('conn_info' in connInfo) && !('chan_info' in connInfo) ? { ...connInfo } : { conn_info: connInfo };
  }
  if (chanInfo !== undefined && chanInfo !== null) state['chan_info'] = chanInfo;
  return state;
}

/** A room connection as Centrifugo's `ClientInfo`: the reverse of {@link presenceUserOf} and {@link presenceStateOf}. */
export function clientInfoOf(userId: string, connId: string, state: State | undefined): ClientInfo {
  const info: ClientInfo = { user: userId === ANONYMOUS_USER_ID ? '' : userId, client: connId };
  if (!state) return info;
  let rest: State | undefined;
  for (const key in state) {
    if (key === 'chan_info') info.chanInfo = state[key]!;
    else if (key === 'conn_info') info.connInfo = state[key]!;
    else (rest ??= {})[key] = state[key]!;
  }
  if (info.connInfo === undefined && rest) info.connInfo = rest;
  return info;
}
