/**
 * The swarm scheduler's numbers, each with the reason for its value. All of them can be overridden
 * through `SwarmInit` (tests do); these are the production defaults.
 */

/** How often a dfclient heartbeats (sent to it in the announce reply). */
export const HEARTBEAT_INTERVAL_MS = 10_000

/** 3.5 heartbeats: one lost or late heartbeat never drops a live peer. */
export const PEER_TTL_MS = 35_000

/**
 * Concurrent uploads a peer is trusted with before it counts as saturated and is ranked after every
 * unsaturated holder, counted in 4 MiB units (a budget of 16 MiB on the wire: four 4 MiB uploads, or
 * one of 16 MiB; proto `piece-layout.ts`). Why 4: a peer's uplink is shared by its uploads, so at 1 Gbit/s each of 4
 * streams still moves ~30 MB/s and a 4 MiB piece leaves in ~135 ms, short enough that a downloader
 * streaming in order never waits long on one piece; fewer than ~4 streams leave the uplink idle in
 * the gaps between one piece's end and the next request's start. It also equals the dfclient's
 * default fetch concurrency (one downloader can keep one holder busy) and sits inside the range the
 * anchors chose (Dragonfly 1 up-limit 5, Kraken pipeline 3–5).
 */
export const MAX_UPLOADS_PER_PEER = 4

/**
 * The seed's (the supernode's own) upload cap in 4 MiB units (128 MiB on the wire), higher than a peer's: it is a server serving from a
 * local file, usually on a faster NIC, and it is the source of last resort. Why 32 (8× a peer):
 * past 32 streams each one gets under 1/32 of the seed's uplink, which on a 10 Gbit/s NIC is about
 * what one of 4 streams on a 1 Gbit/s peer gets, so beyond that a saturated peer is no slower than
 * the seed and keeps the seed's uplink (the thing P2P exists to spare) from becoming the bottleneck.
 */
export const MAX_UPLOADS_SEED = 32

/**
 * How long a handed-out assignment counts as in flight without a result. Why 30 s: a healthy
 * transfer of the largest piece (64 MiB) at 20 MB/s takes ~3.4 s, so 30 s is ~10× any live
 * transfer, yet a dfclient that crashed or never reports results frees the slot within one
 * long-poll cycle (`API_LIMITS.maxWaitMs` is also 30 s).
 */
export const ASSIGNMENT_TTL_MS = 30_000

/**
 * How many of a requester's lacking pieces count as about to be fetched. A reply lists every
 * published piece, but a dfclient fetches only inside a window ahead of its in-order read cursor, so
 * charging every listed piece would saturate every holder at once. The lowest-indexed lacking pieces
 * (or those in [from, from + window)) are that window; 64 is the dfclient's default window
 * (packages/dfclient/src/download/blob-download.ts, where the simulation that chose it is cited; its
 * concurrency is 4). A dfclient with a smaller window is assigned nothing beyond it as long as it
 * sends `from` and the pieces it lacks lie ahead of it; deploy both at the same version.
 */
export const ASSIGNMENT_WINDOW = 64

/**
 * How many pieces of its window a requester fetches at once, in 4 MiB units: the dfclient's default
 * fetch concurrency (16 MiB in flight: four 4 MiB pieces, one of 16 MiB; proto `piecesWithin`). Only these *active* pieces (the ones it fetches now, then the next ones in reply order)
 * get assignments, seed claims and source waits. Why not the whole window: the dfclient starts at most
 * this many fetches, so a seed claim on the rest of the window would hold the seed's single copy of a
 * piece (`SEED_FANOUT_PER_PIECE`) for a requester that is not fetching it, and a wait counted on the
 * rest would run out while the requester was merely busy, handing every waiting requester the seed
 * at once — measured: 8 hosts took all of a blob's last pieces from the seed, 2.4–3.0 seeded copies.
 */
export const ACTIVE_PIECES = 4

/**
 * Seed fan-out per piece: how many requesters at a time may fetch one piece from the seed while no
 * peer holds it (BitTorrent super-seeding: a piece goes out once, then spreads peer to peer). Why 1:
 * in a cold herd every requester wants the same fresh piece at the same moment; with 1, the seed
 * uploads each piece about once and the other requesters fetch it from that first copy (up to
 * `MAX_UPLOADS_PER_PEER` at a time, then from the copies those make), which is what keeps the seed at
 * ≤ 2 copies per wave (ANCHORS §6.3). The cost of a slow or dead first copy is bounded by
 * `SEED_CLAIM_TTL_MS` and `SOURCE_WAIT_LIMIT_MS`; a larger K would spend seed uplink on duplicates
 * exactly when it is scarcest. Requesters that are refused a piece fetch other pieces of their window
 * meanwhile (the reply orders them differently per requester), so refusals cost little throughput.
 */
export const SEED_FANOUT_PER_PIECE = 1

/**
 * How long a requester's claim on a seed upload of one piece counts without news. A claim ends
 * earlier with the requester's result for that piece, its report that it holds the piece, or its
 * departure, and it is renewed whenever the requester polls while its assignment is live (a live
 * dfclient polls at least once per held-piece report in its swarm). Why 3 s: a 4 MiB piece from a
 * seed running its full 32 streams on a 1 Gbit/s link takes ~1.1 s, so 3 s outlasts a healthy
 * transfer that the requester did not re-poll during, while a requester that crashed holds the
 * piece back for seconds, not the 30 s of `ASSIGNMENT_TTL_MS`. Stretched when seed transfers are
 * slow (`SLOW_SEED_TRANSFERS`). Both this and `SOURCE_WAIT_LIMIT_MS` hold for pieces up to the fetch
 * budget (16 MiB, which move as fast as four 4 MiB ones did); a task of larger pieces gets them scaled
 * by piece size ÷ 16 MiB (`seed-pace.ts`).
 */
export const SEED_CLAIM_TTL_MS = 3_000

/**
 * After a successful seed transfer is reported, how long its claim still counts while the
 * requester's held-piece report is on its way (the dfclient reports results at once but holdings only
 * after flushing the piece to disk, plus its 100 ms report batching). Without it the piece would
 * briefly have neither a claim nor a holder and the next poller would get a second seed copy.
 */
export const SEED_ARRIVAL_GRACE_MS = 2_000

/**
 * "Never worse than no P2P": a requester that has been told "no source yet" for a piece in its
 * window for this long is offered the seed for it anyway (beyond the fan-out and beyond the seed's
 * cap), and its long-poll is cut short at that moment so it learns of it. Why 3 s: several times a
 * healthy seed transfer of a 4 MiB piece (~0.1–1.1 s) plus the ~0.2 s a holder needs to report, so a
 * working first copy nearly always arrives first, while a stalled one costs a few seconds at most.
 * Stretched when seed transfers are slow (`SLOW_SEED_TRANSFERS`).
 */
export const SOURCE_WAIT_LIMIT_MS = 3_000

/**
 * How many recent seed transfers `SEED_CLAIM_TTL_MS` and `SOURCE_WAIT_LIMIT_MS` stretch to cover when
 * seed transfers are slow. Both constants assume a seed transfer of at most ~1 s; on a loaded host
 * (the seed serving from a busy CPU) a 4 MiB seed transfer was measured at 1.6–9 s (p10–p90, 8 hosts
 * on 2 cores). With fixed 3 s limits, every requester told "no source yet" for a fresh piece then gave
 * up on the first copy before it could arrive and went to the seed itself, which made the seed slower
 * still: 5–7 seed copies per pull instead of ~1. Why 2: the waiter needs the first copy to arrive (one
 * seed transfer) and then a slot on its holder; the claimant's polls renew its claim far more often.
 * The typical duration is a moving average of reported seed transfer durations (`SEED_TRANSFER_EWMA`),
 * so the limits fall back to the constants once seed transfers are fast again.
 */
export const SLOW_SEED_TRANSFERS = 2

/** Weight of the newest reported seed transfer duration in its moving average. */
export const SEED_TRANSFER_EWMA = 0.2

/**
 * Upper bound of the stretched limits. Why 15 s: half of `ASSIGNMENT_TTL_MS`, so a stalled first copy
 * still costs well under a lost assignment, whatever durations peers report (they are not checked).
 */
export const MAX_STRETCHED_WAIT_MS = 15_000

/**
 * Length of the sliding window over which upload rates and transfer failures are summed. Why 30 s:
 * it spans dozens of 4 MiB pieces even on a slow link, smoothing one piece's jitter, and it is short
 * enough that the load of a finished pull wave (a layer pull lasts tens of seconds) stops counting
 * against a peer within about one pull.
 */
export const RATE_WINDOW_MS = 30_000

/** Buckets the window is cut into: rates then age out in 3 s steps, with constant memory per peer. */
export const RATE_WINDOW_BUCKETS = 10

/**
 * Non-integrity failures (unreachable, piece unavailable, broken stream) within `RATE_WINDOW_MS`
 * after which a source counts as failing: ranked after working sources and no longer enough to keep
 * the seed out of first place. Why 3: one failure is routine (a peer restarting, a stream reset);
 * three in 30 s means the source is down or overloaded for now (Dragonfly's bad-parent check also
 * needs several samples before it judges a parent).
 */
export const FAILURES_BEFORE_DEMOTION = 3

/**
 * How long a source that served a piece failing SHA-256 verification is excluded from one task.
 * Why a limit at all: the report comes from another peer, which the supernode cannot check, so a
 * false report must not exclude an honest peer forever. Why 10 min: longer than a pull wave of one
 * blob, so a bad source stays out of the wave it was caught in.
 */
export const TASK_QUARANTINE_MS = 10 * 60_000

/** Digest mismatches, in distinct tasks, after which a source is excluded from every task. */
export const GLOBAL_QUARANTINE_STRIKES = 3

/**
 * Window in which `GLOBAL_QUARANTINE_STRIKES` must fall. Bad pieces in three different blobs within
 * an hour point at the peer (bad disk, bad memory, malice), not at one unlucky file.
 */
export const STRIKE_WINDOW_MS = 60 * 60_000

/** How long a global quarantine lasts; re-offending afterwards starts a new one. */
export const GLOBAL_QUARANTINE_MS = 30 * 60_000

/** Upper bound on sources listed per piece, keeping replies small however many peers hold a piece. */
export const MAX_SOURCES_PER_PIECE = 8

/**
 * Holders of one piece that ranking its sources considers (`holder-sample.ts`); a piece with no more
 * holders is ranked whole. Ranking every holder of every piece on every request made a poll cost
 * O(pieces × holders): in a 10,000-peer swarm of a 256-piece blob that is millions of comparisons per
 * poll, and the scheduler, not the links, set the pace. The source handed out is the least loaded of
 * the holders shown in turn (a rotating cursor per piece), and choosing the least loaded of
 * even a few candidates balances load nearly as well as choosing among all (the "power of d choices");
 * Dragonfly 2 likewise ranks a sample of 15 candidate parents (FilterParentLimit, ANCHORS §2 row 17).
 * Why 8 and not more: it is the number of sources a reply lists per piece (`MAX_SOURCES_PER_PIECE`),
 * so a reply never shows a holder it did not rank; swarms of up to 9 peers are ranked whole, exactly
 * as the rule reads; and `npm run simulate` finished 300 peers at the same bound ratio with 4, 8 or 16.
 */
export const MAX_HOLDERS_RANKED = 8

/**
 * When none of the holders a piece's ranking considered can take an upload (all saturated or
 * failing), how many more peers are checked for one that can (the piece's other holders, or the
 * peers with a free upload slot, whichever are fewer). Why so few: in a herd most requesters ask, on
 * every poll, about the pieces everyone wants, whose holders are all busy; the search then finds
 * nothing and its cost grew with the swarm (1,024 checks per piece made a 10,000-peer simulation
 * spend most of its time here). Measured with `npm run simulate` (500 peers, 1 GiB): 1,024 checks
 * 1.27× the physical bound, 16 checks 1.27×, none 1.24× — the search does not pay for more. A busy
 * sample means "no source yet" (a slot frees soon, and the next requester's sample is the next one).
 */
export const MAX_USABLE_SEARCH = 16
