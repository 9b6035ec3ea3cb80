/**
 * The PostgreSQL side of a remote store: its tables and the two functions every machine
 * calls (docs/scale-out.md explains the protocol). One PostgreSQL schema holds one store.
 * install() creates it idempotently; an existing schema of another format is refused.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { ClientBase } from 'pg'
import { ArgumentError, FormatError } from '../errors'

/** The format of the remote schema; a schema of another version is refused. */
export const REMOTE_FORMAT = { name: 'txarray-remote', version: 4 } as const

/**
 * The oldest format install() upgrades in place (3 added named segments; 4 the clients
 * table and the collected commit ids' horizon, head.ids_pruned).
 */
const UPGRADABLE_FROM = 2

/**
 * The revision of the server functions within REMOTE_FORMAT: bumped whenever their
 * definition changes without a change of the tables (a change callers of the same format
 * can live with). install() replaces the installed functions when they are of an earlier
 * revision, or of this revision with other bodies (a development build), never when they
 * are of a later one (a newer release's functions serve this one's calls).
 */
export const FUNCTIONS_REVISION = 1

/** The schema a remote store lives in unless the connection string says otherwise. */
export const DEFAULT_SCHEMA = 'txarray'

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

/** Checks that `schema` is a plain lower-case identifier (it is spliced into SQL text). */
export function checkSchemaName(schema: string): string {
  if (!IDENTIFIER.test(schema)) {
    throw new ArgumentError(`remote schema name must match ${IDENTIFIER}, got ${JSON.stringify(schema)}`)
  }
  return schema
}

/** The tables. Block versions are immutable once committed (serial set). */
function tables(s: string): string {
  return `
CREATE TABLE ${s}.meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE ${s}.head (one boolean PRIMARY KEY CHECK (one), serial bigint NOT NULL, pruned bigint NOT NULL,
  ids_pruned bigint NOT NULL DEFAULT 0);
INSERT INTO ${s}.head VALUES (true, 0, 0, 0);
CREATE SEQUENCE ${s}.array_ids;
CREATE TABLE ${s}.arrays (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  serial bigint,
  rows bigint NOT NULL,
  row_bytes bigint NOT NULL,
  block_bytes integer NOT NULL,
  body bytea NOT NULL,
  deleted boolean NOT NULL DEFAULT false);
CREATE UNIQUE INDEX arrays_live_name ON ${s}.arrays (name) WHERE NOT deleted;
CREATE INDEX arrays_serial ON ${s}.arrays (serial);
CREATE TABLE ${s}.blocks (
  array_id bigint NOT NULL,
  block_index bigint NOT NULL,
  serial bigint,
  commit_id uuid NOT NULL,
  data bytea);
ALTER TABLE ${s}.blocks ALTER data SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX blocks_version ON ${s}.blocks (array_id, block_index, serial);
CREATE INDEX blocks_serial ON ${s}.blocks (serial);
CREATE INDEX blocks_pending ON ${s}.blocks (commit_id) WHERE serial IS NULL;
CREATE TABLE ${s}.commit_ids (
  commit_id uuid PRIMARY KEY,
  serial bigint,
  decided timestamptz NOT NULL DEFAULT now());
CREATE TABLE ${s}.commits (
  serial bigint PRIMARY KEY,
  commit_id uuid NOT NULL,
  committed timestamptz NOT NULL DEFAULT now(),
  changes jsonb NOT NULL);
${segmentsTable(s)}
${clientsTable(s)}
`
}

/**
 * The handles reading the store: one row per open remote handle (a random id), the
 * snapshot serial it reads and when it last said so (its heartbeat, server time). collect()
 * keeps every block version a live row's snapshot can read.
 */
function clientsTable(s: string): string {
  return `
CREATE TABLE ${s}.clients (
  id uuid PRIMARY KEY,
  serial bigint NOT NULL,
  seen timestamptz NOT NULL DEFAULT now(),
  about text NOT NULL DEFAULT '');
`
}

/**
 * Named segments: one row per name of an array, its newest state (the rows it names, or
 * deleted) and the commit that set it, as records are versioned. Names are bytes (the
 * UTF-8 of the name, as the local key holds it). Deleting an array deletes its rows.
 */
function segmentsTable(s: string): string {
  return `
CREATE TABLE ${s}.segments (
  array_id bigint NOT NULL,
  name bytea NOT NULL,
  start_row bigint NOT NULL,
  stop_row bigint NOT NULL,
  serial bigint NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  PRIMARY KEY (array_id, name));
CREATE INDEX segments_serial ON ${s}.segments (serial);
`
}

/**
 * txarray.commit(): one commit, all of it in the one statement's transaction (autocommit),
 * at READ COMMITTED (each statement inside sees what the holder of a lock it waited for
 * committed). Returns one row: status 'committed' (serial, assigned ids, lengths, and
 * the change set and time its commits row records, so that the committer can write the
 * commit into its cache without reading it back), 'duplicate' (this commit id landed
 * before, as serial) or 'abandoned' (the id was fenced: it never commits). A conflict raises SQLSTATE TXCON with the facts as JSON in
 * the error's detail, so that nothing of the commit is kept.
 *
 * Records are the arrays whose record this commit changes (p_append_len >= 0: only by
 * appending that many bytes; p_shrink_from >= 0: blocks from there on are cut); blocks
 * name their array by id, or by -(record number) for an array this commit creates.
 * p_data holds every appended byte string (in record order), then every block's bytes.
 * p_flags are the local log's flags the client knows per record (resized, attributes,
 * segments: keys.h); the function adds created, deleted and append-only. The change set
 * of each commit (commits.changes) carries, per array, what the local log does: the
 * record and block ranges changed, name, flags, rows before and after, row and block bytes.
 *
 * Segments (p_seg_*) name their array as blocks do; deletes carry the range the
 * transaction saw (another commit deleted or replaced it: a conflict), puts the range
 * where the transaction laid the rows, moved with a rebased append's rows. A put whose
 * name another commit took raises SQLSTATE TXEXI with the segment's number as JSON detail.
 */
function commitFunction(s: string): string {
  const conflict = (fields: string) =>
    `RAISE EXCEPTION USING ERRCODE = 'TXCON', MESSAGE = 'txarray conflict', DETAIL = json_build_object(${fields})::text;`
  return `
CREATE FUNCTION ${s}.commit(
  p_commit_id uuid, p_snapshot bigint, p_sync boolean,
  p_names text[], p_ids bigint[], p_expected bigint[], p_remove boolean[],
  p_rows bigint[], p_row_bytes bigint[], p_block_bytes integer[], p_bodies bytea[],
  p_append_len bigint[], p_shrink_from bigint[],
  p_block_array bigint[], p_block_index bigint[], p_block_len integer[], p_data bytea, p_flags integer[],
  p_seg_array bigint[], p_seg_name bytea[], p_seg_start bigint[], p_seg_stop bigint[], p_seg_delete boolean[])
RETURNS TABLE (status text, serial bigint, ids bigint[], lengths bigint[], changes jsonb, committed_ms bigint)
LANGUAGE plpgsql
-- Each statement is planned once per connection: a custom plan per call would cost more
-- than the statement (the planner reads every table's size each time).
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
  n_rec integer := coalesce(array_length(p_names, 1), 0);
  n_blk integer := coalesce(array_length(p_block_index, 1), 0);
  n_seg integer := coalesce(array_length(p_seg_name, 1), 0);
  v_seg_ids bigint[];
  v_pruned bigint;
  v_gone bigint;
  -- Block versions the appends write, and the arrays a shrink cuts: stored once the
  -- serial is taken, stamped with it.
  v_app_ids bigint[] := '{}';
  v_app_index bigint[] := '{}';
  v_app_data bytea[] := '{}';
  v_cut_ids bigint[] := '{}';
  v_cut_from bigint[] := '{}';
  v_ids bigint[] := p_ids;
  v_lengths bigint[] := p_rows;
  v_cur record;
  v_serial bigint;
  v_offset integer := 1;
  v_winner bigint;
  v_array bigint;
  v_name text;
  v_rb bigint;
  v_bb integer;
  v_blocks bigint[];
  v_changes jsonb := '{}'::jsonb;
  v_touched bigint[] := '{}';
  v_mine_array bigint[] := '{}';
  v_mine_lo bigint[] := '{}';
  v_mine_hi bigint[] := '{}';
  i integer;
  v_id bigint;
  v_start bigint;
  v_len bigint;
  v_at bigint;
  v_index bigint;
  v_within bigint;
  v_take bigint;
  v_base bytea;
  v_piece bytea;
  v_ch jsonb;
BEGIN
  IF NOT p_sync THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;

  -- 1. The commit id: decided before means a retry (or a fenced attempt).
  INSERT INTO ${s}.commit_ids (commit_id) VALUES (p_commit_id) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT c.serial INTO v_serial FROM ${s}.commit_ids c WHERE c.commit_id = p_commit_id;
    RETURN QUERY SELECT CASE WHEN v_serial IS NULL THEN 'abandoned' ELSE 'duplicate' END, v_serial,
      NULL::bigint[], NULL::bigint[], NULL::jsonb, NULL::bigint;
    RETURN;
  END IF;

  -- 2. Lock every existing array this commit touches, in id order.
  PERFORM 1 FROM ${s}.arrays a
    WHERE a.id IN (SELECT x FROM unnest(coalesce(p_ids, '{}') || coalesce(p_block_array, '{}') || coalesce(p_seg_array, '{}')) x
                    WHERE x > 0)
    ORDER BY a.id FOR UPDATE;

  -- The blocks and block ranges this commit writes or deletes (hi NULL: to the end).
  FOR i IN 1..n_blk LOOP
    IF p_block_array[i] > 0 THEN
      v_mine_array := v_mine_array || p_block_array[i];
      v_mine_lo := v_mine_lo || p_block_index[i];
      v_mine_hi := v_mine_hi || p_block_index[i];
    END IF;
  END LOOP;
  FOR i IN 1..n_rec LOOP
    IF p_ids[i] > 0 AND (p_remove[i] OR p_shrink_from[i] >= 0) THEN
      v_mine_array := v_mine_array || p_ids[i];
      v_mine_lo := v_mine_lo || CASE WHEN p_remove[i] THEN 0 ELSE p_shrink_from[i] END;
      v_mine_hi := v_mine_hi || NULL::bigint;
    END IF;
  END LOOP;

  -- 3. In one statement: a snapshot older than the history the server keeps conflicts
  -- with everything; blocks of an array another commit deleted; the first commit after
  -- the snapshot that wrote one of my blocks (then where, below).
  SELECT (SELECT h.pruned FROM ${s}.head h),
         (SELECT a.id FROM ${s}.arrays a WHERE a.id = ANY(v_mine_array) AND a.deleted AND a.serial > p_snapshot
           ORDER BY a.id LIMIT 1),
         (SELECT min(b.serial) FROM unnest(v_mine_array, v_mine_lo, v_mine_hi) AS m(array_id, lo, hi)
            JOIN ${s}.blocks b ON b.array_id = m.array_id AND b.block_index >= m.lo AND (m.hi IS NULL OR b.block_index <= m.hi)
           WHERE b.serial > p_snapshot)
    INTO v_pruned, v_gone, v_winner;
  IF p_snapshot < v_pruned THEN
    ${conflict(`'what', 'pruned'`)}
  END IF;
  IF v_gone IS NOT NULL THEN
    SELECT a.name, a.serial INTO v_name, v_serial FROM ${s}.arrays a WHERE a.id = v_gone;
    ${conflict(`'array', v_name, 'serial', v_serial, 'metadata', true, 'what', 'deleted'`)}
  END IF;
  IF v_winner IS NOT NULL THEN
    SELECT min(b.array_id) INTO v_array
      FROM unnest(v_mine_array, v_mine_lo, v_mine_hi) AS m(array_id, lo, hi)
      JOIN ${s}.blocks b ON b.array_id = m.array_id AND b.block_index >= m.lo AND (m.hi IS NULL OR b.block_index <= m.hi)
     WHERE b.serial = v_winner;
    SELECT array_agg(DISTINCT b.block_index ORDER BY b.block_index) INTO v_blocks
      FROM unnest(v_mine_array, v_mine_lo, v_mine_hi) AS m(array_id, lo, hi)
      JOIN ${s}.blocks b ON b.array_id = m.array_id AND b.block_index >= m.lo AND (m.hi IS NULL OR b.block_index <= m.hi)
     WHERE b.serial = v_winner AND b.array_id = v_array;
    SELECT a.name, a.row_bytes, a.block_bytes, a.rows INTO v_name, v_rb, v_bb, v_len FROM ${s}.arrays a WHERE a.id = v_array;
    ${conflict(`'array', v_name, 'serial', v_winner, 'metadata', false, 'blocks', v_blocks, 'what', 'blocks', 'rowBytes', v_rb, 'blockBytes', v_bb, 'rows', v_len`)}
  END IF;

  -- 4. Records.
  FOR i IN 1..n_rec LOOP
    SELECT a.* INTO v_cur FROM ${s}.arrays a WHERE a.name = p_names[i] AND NOT a.deleted;
    IF p_append_len[i] >= 0 THEN
      -- Append only: rebase at the locked head; nothing but its deletion or replacement conflicts.
      IF v_cur.id IS NULL OR v_cur.id <> p_ids[i] OR v_cur.row_bytes <> p_row_bytes[i] THEN
        IF v_cur.id IS NULL THEN
          SELECT a.serial INTO v_serial FROM ${s}.arrays a WHERE a.id = p_ids[i];
        ELSE
          v_serial := v_cur.serial;
        END IF;
        v_name := p_names[i];
        ${conflict(`'array', v_name, 'serial', v_serial, 'metadata', true, 'what', CASE WHEN v_cur.id IS NULL THEN 'deleted' ELSE 'replaced' END`)}
      END IF;
      v_id := v_cur.id;
      v_bb := v_cur.block_bytes;
      v_len := p_append_len[i];
      v_start := v_cur.rows * v_cur.row_bytes;
      v_at := v_start;
      v_ch := coalesce(v_changes -> v_id::text, '{"blocks": []}'::jsonb) || jsonb_build_object('record', true,
        'name', p_names[i], 'flags', p_flags[i] | 8, 'rowsBefore', v_cur.rows,
        'rowsAfter', v_cur.rows + v_len / v_cur.row_bytes, 'rowBytes', v_cur.row_bytes, 'blockBytes', v_bb);
      WHILE v_at < v_start + v_len LOOP
        v_index := v_at / v_bb;
        v_within := v_at % v_bb;
        v_take := least(v_bb - v_within, v_start + v_len - v_at);
        v_piece := substring(p_data FROM v_offset + (v_at - v_start)::integer FOR v_take::integer);
        IF v_within > 0 THEN
          SELECT b.data INTO v_base FROM ${s}.blocks b
           WHERE b.array_id = v_id AND b.block_index = v_index AND b.serial IS NOT NULL
           ORDER BY b.serial DESC LIMIT 1;
          v_base := substring(coalesce(v_base, ''::bytea) FROM 1 FOR v_within::integer);
          v_piece := v_base || decode(repeat('00', (v_within - length(v_base))::integer), 'hex') || v_piece;
        END IF;
        v_app_ids := v_app_ids || v_id;
        v_app_index := v_app_index || v_index;
        v_app_data := v_app_data || v_piece;
        v_ch := jsonb_set(v_ch, '{blocks}', (v_ch -> 'blocks') || jsonb_build_array(jsonb_build_array(v_index, v_index)));
        v_at := v_at + v_take;
      END LOOP;
      v_changes := jsonb_set(v_changes, ARRAY[v_id::text], v_ch);
      v_offset := v_offset + v_len::integer;
      v_lengths[i] := v_cur.rows + v_len / v_cur.row_bytes;
      UPDATE ${s}.arrays a SET rows = v_lengths[i], serial = NULL WHERE a.id = v_id;
      v_touched := v_touched || v_id;
      CONTINUE;
    END IF;
    IF coalesce(v_cur.serial, 0) <> p_expected[i] OR (p_ids[i] > 0 AND v_cur.id IS NOT NULL AND v_cur.id <> p_ids[i]) THEN
      IF v_cur.id IS NULL AND p_ids[i] > 0 THEN
        SELECT a.serial INTO v_serial FROM ${s}.arrays a WHERE a.id = p_ids[i];
      ELSE
        v_serial := v_cur.serial;
      END IF;
      v_name := p_names[i];
      ${conflict(`'array', v_name, 'serial', v_serial, 'metadata', true, 'what', CASE WHEN p_expected[i] = 0 THEN 'created' WHEN v_cur.id IS NULL THEN 'deleted' ELSE 'changed' END`)}
    END IF;
    IF p_remove[i] THEN
      IF v_cur.id IS NOT NULL THEN
        UPDATE ${s}.arrays a SET deleted = true, serial = NULL WHERE a.id = v_cur.id;
        DELETE FROM ${s}.segments g WHERE g.array_id = v_cur.id;
        v_changes := jsonb_set(v_changes, ARRAY[v_cur.id::text], jsonb_build_object('record', true,
          'blocks', '[[0, null]]'::jsonb, 'name', p_names[i], 'flags', p_flags[i] | 4, 'rowsBefore', v_cur.rows,
          'rowsAfter', 0, 'rowBytes', v_cur.row_bytes, 'blockBytes', v_cur.block_bytes));
        v_touched := v_touched || v_cur.id;
      END IF;
      CONTINUE;
    END IF;
    IF v_cur.id IS NULL THEN
      v_id := nextval('${s}.array_ids');
      v_ids[i] := v_id;
      BEGIN
        INSERT INTO ${s}.arrays (id, name, serial, rows, row_bytes, block_bytes, body)
          VALUES (v_id, p_names[i], NULL, p_rows[i], p_row_bytes[i], p_block_bytes[i], p_bodies[i]);
      EXCEPTION WHEN unique_violation THEN
        SELECT a.serial INTO v_serial FROM ${s}.arrays a WHERE a.name = p_names[i] AND NOT a.deleted;
        v_name := p_names[i];
        ${conflict(`'array', v_name, 'serial', v_serial, 'metadata', true, 'what', 'created'`)}
      END;
    ELSE
      v_id := v_cur.id;
      UPDATE ${s}.arrays a SET rows = p_rows[i], row_bytes = p_row_bytes[i], body = p_bodies[i], serial = NULL
       WHERE a.id = v_id;
    END IF;
    v_ch := coalesce(v_changes -> v_id::text, '{"blocks": []}'::jsonb) || jsonb_build_object('record', true,
      'name', p_names[i], 'flags', p_flags[i] | CASE WHEN v_cur.id IS NULL THEN 2 ELSE 0 END,
      'rowsBefore', coalesce(v_cur.rows, 0), 'rowsAfter', p_rows[i], 'rowBytes', p_row_bytes[i],
      'blockBytes', p_block_bytes[i]);
    IF p_shrink_from[i] >= 0 THEN
      -- Tombstones for the stored blocks past the new end (written with the serial).
      v_cut_ids := v_cut_ids || v_id;
      v_cut_from := v_cut_from || p_shrink_from[i];
      v_ch := jsonb_set(v_ch, '{blocks}', (v_ch -> 'blocks') || jsonb_build_array(jsonb_build_array(p_shrink_from[i], NULL)));
    END IF;
    v_changes := jsonb_set(v_changes, ARRAY[v_id::text], v_ch);
    v_touched := v_touched || v_id;
  END LOOP;

  -- 5. Blocks: the change set's ranges now (one statement); the versions once the
  -- serial is taken.
  IF n_blk > 0 THEN
    SELECT v_changes || jsonb_object_agg(g.id::text, jsonb_set(
             coalesce(v_changes -> g.id::text, jsonb_build_object('record', false, 'blocks', '[]'::jsonb, 'name', a.name,
               'flags', 0, 'rowsBefore', a.rows, 'rowsAfter', a.rows, 'rowBytes', a.row_bytes, 'blockBytes', a.block_bytes)),
             '{blocks}', coalesce(v_changes -> g.id::text -> 'blocks', '[]'::jsonb) || g.ranges))
      INTO v_changes
      FROM (SELECT CASE WHEN u.x > 0 THEN u.x ELSE v_ids[(-u.x)::integer] END AS id,
                   jsonb_agg(jsonb_build_array(u.idx, u.idx) ORDER BY u.o) AS ranges
              FROM unnest(p_block_array, p_block_index) WITH ORDINALITY u(x, idx, o) GROUP BY 1) g
      LEFT JOIN ${s}.arrays a ON a.id = g.id;
  END IF;

  -- 6. Named segments: a delete must find the range the transaction saw; a put needs
  -- its name free (or deleted by this commit). Followers are told (flag 64).
  IF n_seg > 0 THEN
    SELECT array_agg(CASE WHEN x > 0 THEN x ELSE v_ids[(-x)::integer] END ORDER BY o) INTO v_seg_ids
      FROM unnest(p_seg_array) WITH ORDINALITY u(x, o);
    SELECT m.o, m.id INTO v_at, v_id
      FROM unnest(v_seg_ids, p_seg_name, p_seg_start, p_seg_stop, p_seg_delete) WITH ORDINALITY m(id, name, lo, hi, del, o)
     WHERE m.del AND NOT EXISTS (SELECT 1 FROM ${s}.segments g WHERE g.array_id = m.id AND g.name = m.name
                                   AND NOT g.deleted AND g.start_row = m.lo AND g.stop_row = m.hi)
     ORDER BY m.o LIMIT 1;
    IF FOUND THEN
      SELECT a.name INTO v_name FROM ${s}.arrays a WHERE a.id = v_id;
      ${conflict(`'array', v_name, 'metadata', false, 'what', 'segment', 'segment', v_at - 1`)}
    END IF;
    SELECT m.o INTO v_at
      FROM unnest(v_seg_ids, p_seg_name, p_seg_delete) WITH ORDINALITY m(id, name, del, o)
     WHERE NOT m.del
       AND EXISTS (SELECT 1 FROM ${s}.segments g WHERE g.array_id = m.id AND g.name = m.name AND NOT g.deleted)
       AND NOT EXISTS (SELECT 1 FROM unnest(v_seg_ids, p_seg_name, p_seg_delete) d(id, name, del)
                        WHERE d.del AND d.id = m.id AND d.name = m.name)
     ORDER BY m.o LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'TXEXI', MESSAGE = 'txarray segment exists',
        DETAIL = json_build_object('segment', v_at - 1)::text;
    END IF;
    FOR v_id IN SELECT DISTINCT x FROM unnest(v_seg_ids) x LOOP
      v_ch := v_changes -> v_id::text;
      IF v_ch IS NULL THEN
        SELECT jsonb_build_object('record', false, 'blocks', '[]'::jsonb, 'name', a.name, 'flags', 0,
                 'rowsBefore', a.rows, 'rowsAfter', a.rows, 'rowBytes', a.row_bytes, 'blockBytes', a.block_bytes)
          INTO v_ch FROM ${s}.arrays a WHERE a.id = v_id;
      END IF;
      v_changes := jsonb_set(v_changes, ARRAY[v_id::text],
        jsonb_set(v_ch, '{flags}', to_jsonb((v_ch ->> 'flags')::integer | 64)));
    END LOOP;
  END IF;

  -- 7. The serial, and in the same statement what every commit writes with it: the head
  -- row (it orders commits; its lock is held from here to the end of COMMIT), the written
  -- block versions stamped with it (one heap tuple each; the bytes arrived with the call),
  -- the records' serial, the commit id's decision and the commits row. Then, when there
  -- are any, appended blocks and a shrink's tombstones (of earlier versions only).
  WITH h AS (UPDATE ${s}.head SET serial = serial + 1 RETURNING serial),
  blk AS (INSERT INTO ${s}.blocks (array_id, block_index, serial, commit_id, data)
          SELECT CASE WHEN m.x > 0 THEN m.x ELSE v_ids[(-m.x)::integer] END, m.idx, h.serial, p_commit_id,
                 CASE WHEN m.len = 0 THEN NULL
                      WHEN m.len = octet_length(p_data) THEN p_data  -- the one block: stored without a copy
                      ELSE substring(p_data FROM v_offset + (m.upto - m.len)::integer FOR m.len) END
            FROM h, (SELECT u.x, u.idx, u.len, sum(u.len) OVER (ORDER BY u.o) AS upto
                       FROM unnest(p_block_array, p_block_index, p_block_len) WITH ORDINALITY u(x, idx, len, o)) m),
  rec AS (UPDATE ${s}.arrays a SET serial = h.serial FROM h WHERE a.id = ANY(v_touched)),
  dec AS (UPDATE ${s}.commit_ids c SET serial = h.serial, decided = now() FROM h WHERE c.commit_id = p_commit_id),
  log AS (INSERT INTO ${s}.commits (serial, commit_id, changes) SELECT h.serial, p_commit_id, v_changes FROM h)
  SELECT h.serial INTO v_serial FROM h;
  IF cardinality(v_app_ids) > 0 THEN
    INSERT INTO ${s}.blocks (array_id, block_index, serial, commit_id, data)
      SELECT m.id, m.idx, v_serial, p_commit_id, m.data FROM unnest(v_app_ids, v_app_index, v_app_data) m(id, idx, data);
  END IF;
  IF cardinality(v_cut_ids) > 0 THEN
    INSERT INTO ${s}.blocks (array_id, block_index, serial, commit_id, data)
      SELECT DISTINCT b.array_id, b.block_index, v_serial, p_commit_id, NULL::bytea
        FROM unnest(v_cut_ids, v_cut_from) c(id, first)
        JOIN ${s}.blocks b ON b.array_id = c.id AND b.block_index >= c.first
       WHERE b.serial IS NOT NULL AND b.serial < v_serial;
  END IF;
  IF n_seg > 0 THEN
    UPDATE ${s}.segments g SET deleted = true, serial = v_serial
      FROM unnest(v_seg_ids, p_seg_name, p_seg_delete) m(id, name, del)
     WHERE m.del AND g.array_id = m.id AND g.name = m.name;
    -- A rebased append's segments move by the rows its append moved.
    INSERT INTO ${s}.segments AS g (array_id, name, start_row, stop_row, serial)
      SELECT m.id, m.name, m.lo + coalesce(sh.moved, 0), m.hi + coalesce(sh.moved, 0), v_serial
        FROM unnest(v_seg_ids, p_seg_name, p_seg_start, p_seg_stop, p_seg_delete) m(id, name, lo, hi, del)
        LEFT JOIN (SELECT DISTINCT ON (r.id) r.id, r.after - r.before AS moved
                     FROM unnest(v_ids, v_lengths, p_rows, p_append_len) r(id, after, before, appended)
                    WHERE r.appended >= 0) sh ON sh.id = m.id
       WHERE NOT m.del
      ON CONFLICT (array_id, name) DO UPDATE
        SET start_row = EXCLUDED.start_row, stop_row = EXCLUDED.stop_row, serial = EXCLUDED.serial, deleted = false;
  END IF;
  PERFORM pg_notify('${s}_commit', v_serial::text);
  status := 'committed';
  serial := v_serial;
  ids := v_ids;
  lengths := v_lengths;
  changes := v_changes;
  committed_ms := (extract(epoch FROM now()) * 1000)::bigint;
  RETURN NEXT;
END
$fn$;
`
}

/**
 * txarray.changes_since(L): what commits after L changed, as of one snapshot (a STABLE
 * SQL function reads the calling query's snapshot): the head serial, the commits, the
 * records changed (deleted ones included), the newest version of every block written, and
 * the segment names added or deleted (kind 'segment': block_index holds the first row,
 * rows the end, body the name).
 */
function changesSinceFunction(s: string): string {
  return `
CREATE FUNCTION ${s}.changes_since(p_after bigint)
RETURNS TABLE (kind text, serial bigint, array_id bigint, block_index bigint, name text, rows bigint,
               row_bytes bigint, block_bytes integer, body bytea, deleted boolean, data bytea, changes jsonb,
               committed_ms bigint, pruned bigint)
LANGUAGE sql STABLE AS $fn$
  SELECT 'head', h.serial, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, NULL::integer,
         NULL::bytea, NULL::boolean, NULL::bytea, NULL::jsonb, NULL::bigint, h.pruned FROM ${s}.head h
  UNION ALL
  SELECT 'commit', c.serial, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, c.changes,
         (extract(epoch FROM c.committed) * 1000)::bigint, NULL
    FROM ${s}.commits c WHERE c.serial > p_after
  UNION ALL
  SELECT 'record', a.serial, a.id, NULL, a.name, a.rows, a.row_bytes, a.block_bytes, a.body, a.deleted, NULL, NULL, NULL, NULL
    FROM ${s}.arrays a WHERE a.serial > p_after
  UNION ALL
  SELECT 'block', v.serial, v.array_id, v.block_index, NULL, NULL, NULL, NULL, NULL, NULL, v.data, NULL, NULL, NULL
    FROM (SELECT DISTINCT ON (b.array_id, b.block_index) b.serial, b.array_id, b.block_index, b.data
            FROM ${s}.blocks b WHERE b.serial > p_after
           ORDER BY b.array_id, b.block_index, b.serial DESC) v
  UNION ALL
  SELECT 'segment', g.serial, g.array_id, g.start_row, NULL, g.stop_row, NULL, NULL, g.name, g.deleted, NULL, NULL, NULL, NULL
    FROM ${s}.segments g WHERE g.serial > p_after
$fn$;
`
}

/**
 * txarray.collect(keep, keepIds, clientTimeout): retention. The horizon moves to head −
 * `keep`, but never past the oldest snapshot a live client reads (clients rows whose
 * heartbeat is older than `clientTimeout` are dead: they are deleted and hold nothing),
 * and never back. Block versions superseded at or before the horizon, tombstones and
 * deleted arrays from before it, and their commits rows go; commit ids decided longer
 * than `keepIds` ago go, and head.ids_pruned records the newest serial among them (a
 * commit id looked up and not found is "unknown" rather than "not committed" when it may
 * have landed at or before that serial). The newest version of every live block stays. A
 * snapshot older than the horizon can no longer commit (it conflicts), and a cache older
 * than it resyncs. Returns how many rows of each kind went.
 */
function collectFunction(s: string): string {
  return `
CREATE FUNCTION ${s}.collect(p_keep bigint, p_keep_ids interval DEFAULT '7 days',
                             p_client_timeout interval DEFAULT '60 seconds')
RETURNS TABLE (horizon bigint, versions bigint, tombstones bigint, records bigint, commits bigint, ids bigint,
               clients bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_horizon bigint;
  v_versions bigint;
  v_tombstones bigint;
  v_records bigint;
  v_commits bigint;
  v_ids bigint;
  v_ids_upto bigint;
  v_clients bigint;
BEGIN
  DELETE FROM ${s}.clients c WHERE c.seen < now() - p_client_timeout;
  GET DIAGNOSTICS v_clients = ROW_COUNT;
  -- Serialises with commits and other collectors for the moment the horizon moves. A
  -- client registering meanwhile catches up to the head after registering, so its
  -- snapshot is never older than this horizon; clients move forward only.
  UPDATE ${s}.head h SET pruned = greatest(h.pruned, least(h.serial - p_keep,
      coalesce((SELECT min(c.serial) FROM ${s}.clients c), h.serial)))
    RETURNING h.pruned INTO v_horizon;
  DELETE FROM ${s}.blocks b WHERE b.serial < v_horizon AND EXISTS (
    SELECT 1 FROM ${s}.blocks n WHERE n.array_id = b.array_id AND n.block_index = b.block_index
       AND n.serial > b.serial AND n.serial <= v_horizon);
  GET DIAGNOSTICS v_versions = ROW_COUNT;
  DELETE FROM ${s}.blocks b WHERE b.data IS NULL AND b.serial <= v_horizon;
  GET DIAGNOSTICS v_tombstones = ROW_COUNT;
  DELETE FROM ${s}.blocks b USING ${s}.arrays a WHERE b.array_id = a.id AND a.deleted AND a.serial <= v_horizon;
  DELETE FROM ${s}.arrays a WHERE a.deleted AND a.serial <= v_horizon;
  GET DIAGNOSTICS v_records = ROW_COUNT;
  DELETE FROM ${s}.segments g WHERE g.deleted AND g.serial <= v_horizon;
  DELETE FROM ${s}.commits c WHERE c.serial <= v_horizon;
  GET DIAGNOSTICS v_commits = ROW_COUNT;
  WITH gone AS (DELETE FROM ${s}.commit_ids c WHERE c.decided < now() - p_keep_ids RETURNING c.serial)
  SELECT count(*), max(gone.serial) INTO v_ids, v_ids_upto FROM gone;
  IF v_ids_upto IS NOT NULL THEN
    UPDATE ${s}.head h SET ids_pruned = greatest(h.ids_pruned, v_ids_upto);
  END IF;
  RETURN QUERY SELECT v_horizon, v_versions, v_tombstones, v_records, v_commits, v_ids, v_clients;
END
$fn$;
`
}

/** Every server function, in the order install() creates them. */
function functions(s: string): string[] {
  return [commitFunction(s), changesSinceFunction(s), collectFunction(s)]
}

/** What meta 'functions' records of the installed functions: their revision and bodies' hash. */
export function functionsStamp(s: string): { revision: number; hash: string } {
  const hash = createHash('sha256')
  for (const text of functions(s)) hash.update(text)
  return { revision: FUNCTIONS_REVISION, hash: hash.digest('hex') }
}

/** Drops the installed server functions (those of any earlier format too) and creates this release's. */
async function replaceFunctions(client: ClientBase, s: string): Promise<void> {
  await client.query(`DROP FUNCTION IF EXISTS ${s}.commit; DROP FUNCTION IF EXISTS ${s}.changes_since; DROP FUNCTION IF EXISTS ${s}.collect`)
  for (const text of functions(s)) await client.query(text)
  await client.query(`INSERT INTO ${s}.meta VALUES ('functions', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    [JSON.stringify(functionsStamp(s))])
}

/**
 * Creates the store's schema if it does not exist (concurrent installs wait for each
 * other); refuses a schema of another format with FormatError. Returns the store's id.
 */
export async function install(client: ClientBase, schema = DEFAULT_SCHEMA): Promise<string> {
  const s = checkSchemaName(schema)
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`txarray install ${s}`])
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [s])
    if (exists.rowCount === 0) {
      await client.query(`CREATE SCHEMA ${s}`)
      await client.query(tables(s))
      await client.query(`INSERT INTO ${s}.meta VALUES ('format', $1), ('store', $2)`, [
        JSON.stringify(REMOTE_FORMAT), JSON.stringify({ id: randomUUID() }),
      ])
      await replaceFunctions(client, s)
    } else {
      await upgrade(client, s)
    }
    const id = await storeId(client, s)
    await client.query('COMMIT')
    return id
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw e
  }
}

/**
 * Brings a store of an earlier format this release can upgrade (UPGRADABLE_FROM on) to
 * REMOTE_FORMAT in place, inside install()'s transaction: the tables a later format added,
 * then every function replaced. A store of this format gets this release's functions when
 * its own are of an earlier revision or differ at the same one (FUNCTIONS_REVISION).
 * Anything else is left for storeId() to judge.
 */
async function upgrade(client: ClientBase, s: string): Promise<void> {
  const meta = await client.query('SELECT to_regclass($1) AS t', [`${s}.meta`])
  if (meta.rows[0].t === null) return
  const rows = (await client.query(`SELECT key, value FROM ${s}.meta WHERE key IN ('format', 'functions')`)).rows as
    { key: string; value: { name?: string; version?: number; revision?: number; hash?: string } }[]
  const format = rows.find((r) => r.key === 'format')?.value
  const version = format?.version ?? 0
  if (format?.name !== REMOTE_FORMAT.name || version < UPGRADABLE_FROM || version > REMOTE_FORMAT.version) return
  if (version === REMOTE_FORMAT.version) {
    const installed = rows.find((r) => r.key === 'functions')?.value
    const mine = functionsStamp(s)
    const revision = installed?.revision ?? 0
    if (revision > mine.revision || (revision === mine.revision && installed?.hash === mine.hash)) return
    await replaceFunctions(client, s)
    return
  }
  if (version < 3) await client.query(segmentsTable(s))
  if (version < 4) {
    await client.query(`ALTER TABLE ${s}.head ADD COLUMN ids_pruned bigint NOT NULL DEFAULT 0`)
    await client.query(clientsTable(s))
  }
  await replaceFunctions(client, s)
  await client.query(`UPDATE ${s}.meta SET value = $1 WHERE key = 'format'`, [JSON.stringify(REMOTE_FORMAT)])
}

/** The store's id, after checking the schema's format. */
export async function storeId(client: ClientBase, schema = DEFAULT_SCHEMA): Promise<string> {
  const s = checkSchemaName(schema)
  let rows: { key: string; value: { name?: string; version?: number; id?: string } }[]
  try {
    rows = (await client.query(`SELECT key, value FROM ${s}.meta WHERE key IN ('format', 'store')`)).rows
  } catch (e) {
    if ((e as { code?: string }).code === '42P01') throw new FormatError(`schema ${s} holds no txarray store (no meta table)`)
    throw e
  }
  const format = rows.find((r) => r.key === 'format')?.value
  const store = rows.find((r) => r.key === 'store')?.value
  if (!format || format.name !== REMOTE_FORMAT.name) throw new FormatError(`schema ${s} holds no txarray store`)
  if (format.version !== REMOTE_FORMAT.version) {
    throw new FormatError(`schema ${s} holds a remote store of format ${format.version}; this release reads format ${REMOTE_FORMAT.version}`)
  }
  if (!store?.id) throw new FormatError(`schema ${s} has no store id`)
  return store.id
}
