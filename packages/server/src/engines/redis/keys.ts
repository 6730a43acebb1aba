import clusterKeySlot from 'cluster-key-slot';
import type { RoomId } from 'realtime-message-protocol';

const SLOT_COUNT = 16_384;

let slotTags: string[] | undefined;

/**
 * For each of the 16384 cluster slots, a short string whose CRC16 lands in
 * that slot. The reaper index of a slot is stored under that tag, so a room
 * script can update the index of its own slot atomically, in a cluster too.
 * Computed once per process (about 90k CRC16s, ~15 ms).
 */
function slotTag(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(SLOT_COUNT);
    let found = 0;
    for (let i = 0; found < SLOT_COUNT; i++) {
      const candidate = i.toString(36);
      const s = clusterKeySlot(candidate);
      if (tags[s] === undefined) {
        tags[s] = candidate;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** The keys of one user's status: all under the hash tag `{user:<id>}`, so one script reaches them on a cluster too. */
export interface UserKeys {
  /** The record hash: `<prefix>{user:<id>}`. */
  record: string;
  /** Marks of the user's presence connections (connection → epoch, live, ended at): `<prefix>{user:<id>}:c`. */
  conns: string;
  /** The status deadline index of the user's slot (same slot as the record). */
  dueIndex: string;
  slot: number;
}

export interface RoomKeys {
  /** `<prefix>{room:<id>}:`: every key of the room starts with it. */
  prefix: string;
  seq: string;
  exp: string;
  tomb: string;
  slotIndex: string;
  /** Prefix of connection hashes: `${connPrefix}${connId}`. */
  connPrefix: string;
  channel: string;
  slot: number;
}

/** The keys of one channel: all under the hash tag `{ch:<name>}`, so its scripts reach them (and publish) in one slot. */
export interface ChannelKeys {
  /** The history: a Redis Stream whose entry ids are the offsets (`<offset>-0`). */
  stream: string;
  /** The meta record: a hash of `e` (epoch) and `s` (newest offset). */
  meta: string;
  /** The sharded pub/sub channel of the channel's publications. */
  pubsub: string;
  slot: number;
}

/**
 * The one place Redis key names are made. Everything of a room shares the
 * hash tag `{room:<id>}`; ids cannot contain braces, so the tag always ends
 * right after the id.
 */
export class KeySpace {
  /** Key names of recently used rooms; bounded, cleared when full (hot rooms refill it at once). */
  private readonly cache = new Map<RoomId, RoomKeys>();

  constructor(
    readonly prefix: string = 'rm:',
    private readonly cacheSize = 10_000,
  ) {}

  room(roomId: RoomId): RoomKeys {
    let keys = this.cache.get(roomId);
    if (!keys) {
      if (this.cache.size >= this.cacheSize) this.cache.clear();
      keys = this.computeRoom(roomId);
      this.cache.set(roomId, keys);
    }
    return keys;
  }

  private computeRoom(roomId: RoomId): RoomKeys {
    const tag = `{room:${roomId}}`;
    const slot = clusterKeySlot(tag);
    const base = `${this.prefix}${tag}:`;
    return {
      prefix: base,
      seq: `${base}seq`,
      exp: `${base}exp`,
      tomb: `${base}tomb`,
      slotIndex: this.slotIndex(slot),
      connPrefix: `${base}c:`,
      channel: `${base}ev`,
      slot,
    };
  }

  slotIndex(slot: number): string {
    return `${this.prefix}reap:{${slotTag(slot)}}`;
  }

  /** The slot a slot-index tag stands for. */
  slotOfTag(tag: string): number {
    return clusterKeySlot(tag);
  }

  /** Pattern matching every slot index key, for the sweep. */
  get slotIndexPattern(): string {
    return `${this.prefix}reap:{*`;
  }

  /** The classic pub/sub channel that carries every presence event but leaves, of every room (the scripts derive it from the room prefix). */
  get allEvents(): string {
    return `${this.prefix}events`;
  }

  /** The classic pub/sub channel that carries every leave of every room (the scripts derive it from the room prefix). */
  get allLeaves(): string {
    return `${this.prefix}leaves`;
  }

  /** The keys of one channel (channel names cannot contain braces, so the tag ends right after the name). */
  channel(name: string): ChannelKeys {
    const tag = `{ch:${name}}`;
    const base = `${this.prefix}${tag}:`;
    return { stream: `${base}stream`, meta: `${base}meta`, pubsub: `${base}pub`, slot: clusterKeySlot(tag) };
  }

  /** The keys of one user's status (user ids cannot contain braces, so the tag ends right after the id). */
  user(userId: string): UserKeys {
    const tag = `{user:${userId}}`;
    const slot = clusterKeySlot(tag);
    const record = `${this.prefix}${tag}`;
    return { record, conns: `${record}:c`, dueIndex: this.statusDueIndex(slot), slot };
  }

  /** The status deadline index of one cluster slot (users by their next deadline), tagged to lie in that slot. */
  statusDueIndex(slot: number): string {
    return `${this.prefix}sdue:{${slotTag(slot)}}`;
  }

  /** Pattern matching every status deadline index, for the repair sweep. */
  get statusDueIndexPattern(): string {
    return `${this.prefix}sdue:{*`;
  }

  /** Slots whose status deadline index has something due, scored by the earliest deadline (or a claim marker). */
  get statusHint(): string {
    return `${this.prefix}sduehint`;
  }

  /** The classic pub/sub channel of every status write (cache invalidation) and status event of every user. */
  get statusChannel(): string {
    return `${this.prefix}status`;
  }

  /** Partition `p` of the backend log, a Stream: `<prefix>log:<p>` (docs/channels.md, "Backend log"). */
  logPartition(p: number): string {
    return `${this.logBase}${p}`;
  }

  /** What every partition key starts with. */
  get logBase(): string {
    return `${this.prefix}log:`;
  }

  /** The backend log's outbox of one cluster slot (a Stream tagged to lie in that slot; Cluster only). */
  logOutbox(slot: number): string {
    return `${this.prefix}logq:{${slotTag(slot)}}`;
  }

  /** Pattern matching every outbox key, for the relay's repair. */
  get logOutboxPattern(): string {
    return `${this.prefix}logq:{*}`;
  }

  /** Slots that have something to reap, scored by their earliest deadline (or a claim marker). */
  get hint(): string {
    return `${this.prefix}reaphint`;
  }
}
