"""The database schema as named sqlite-utils migrations, applied at start-up."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("inboxd")


@migrations(name="0001_core")
def _core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            agent TEXT NOT NULL,
            path TEXT NOT NULL,             -- relative to the root
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            state TEXT NOT NULL,
            resume_state TEXT,              -- where a failed batch picks up again
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,           -- failed: when to retry; NULL means parked
            last_error TEXT,
            archive_path TEXT,
            pairs_total INTEGER,
            pairs_valid INTEGER,
            pairs_invalid INTEGER,
            pairs_new INTEGER,
            reject_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX batches_path ON batches (path, id);
        CREATE INDEX batches_state ON batches (state, id);

        CREATE TABLE transitions (
            id INTEGER PRIMARY KEY,
            batch_id INTEGER NOT NULL REFERENCES batches (id),
            from_state TEXT,
            to_state TEXT NOT NULL,
            at REAL NOT NULL,
            detail TEXT                     -- JSON
        );
        CREATE INDEX transitions_batch ON transitions (batch_id, id);

        CREATE TABLE pairs (
            id INTEGER PRIMARY KEY,         -- also the label in the vector index
            hash TEXT NOT NULL UNIQUE,      -- sha256 of the normalised question and answer
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            indicator TEXT,
            session INTEGER,
            category TEXT,
            difficulty TEXT,
            type TEXT,
            tags TEXT,                      -- JSON list
            sources TEXT,                   -- JSON list
            extra TEXT,                     -- JSON object: unknown keys, kept verbatim
            first_batch_id INTEGER NOT NULL REFERENCES batches (id),
            created_at REAL NOT NULL
        );

        CREATE TABLE pair_sources (
            pair_id INTEGER NOT NULL REFERENCES pairs (id),
            batch_id INTEGER NOT NULL REFERENCES batches (id),
            position TEXT NOT NULL,         -- "item 3" or "line 7"
            item_id TEXT,                   -- the pair's own "id" field, if any
            PRIMARY KEY (pair_id, batch_id, position)
        );
        CREATE INDEX pair_sources_batch ON pair_sources (batch_id);

        CREATE TABLE batch_errors (
            id INTEGER PRIMARY KEY,
            batch_id INTEGER NOT NULL REFERENCES batches (id),
            position TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX batch_errors_batch ON batch_errors (batch_id);

        CREATE TABLE signals (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,             -- all_sessions_complete
            agent TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at REAL NOT NULL,
            handled_at REAL,                -- set by the corpus stages that act on it
            UNIQUE (kind, agent, sha256)
        );

        CREATE TABLE progress (
            agent TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            sessions_complete INTEGER,
            sessions_total INTEGER,
            current_session INTEGER,
            last_updated TEXT,
            notes TEXT,
            raw TEXT NOT NULL,
            seen_at REAL NOT NULL
        );
        """
    )


@migrations(name="0002_refinement")
def _refinement(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE embeddings (
            text_hash TEXT NOT NULL,        -- sha256 of the normalised text embedded
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,           -- float32, L2-normalised
            created_at REAL NOT NULL,
            PRIMARY KEY (text_hash, model)
        );

        CREATE TABLE duplicates (
            pair_id INTEGER PRIMARY KEY REFERENCES pairs (id),
            duplicate_of INTEGER NOT NULL REFERENCES pairs (id),
            similarity REAL NOT NULL,
            method TEXT NOT NULL,           -- exact | near
            threshold REAL NOT NULL,
            decided_at REAL NOT NULL
        );
        CREATE INDEX duplicates_of ON duplicates (duplicate_of);

        CREATE TABLE scores (
            pair_hash TEXT NOT NULL,
            scorer TEXT NOT NULL,           -- name/version, e.g. rubric/1
            score REAL NOT NULL,            -- 0-100
            tier TEXT NOT NULL,
            subscores TEXT NOT NULL,        -- JSON
            rationale TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (pair_hash, scorer)
        );

        ALTER TABLE pairs ADD COLUMN norm_hash TEXT;      -- exact-duplicate key
        ALTER TABLE pairs ADD COLUMN dedup_at REAL;       -- when its duplicate check ran
        CREATE INDEX pairs_norm_hash ON pairs (norm_hash);
        """
    )
    db.table("pairs").enable_fts(["question", "answer"], tokenize="porter", create_triggers=True)


@migrations(name="0003_sessions")
def _sessions(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE assignments (
            agent TEXT NOT NULL,
            session INTEGER NOT NULL,
            kind TEXT NOT NULL,             -- plan (a catalog session) | gap_fill
            title TEXT NOT NULL,
            indicators TEXT NOT NULL,       -- JSON list: catalog ids, unknown names as written
            requests TEXT NOT NULL,         -- JSON: per indicator, what a gap-fill asks for
            path TEXT NOT NULL,             -- inbox/<agent>/session-NN-assignment.md
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL,           -- dispatch (inboxd wrote it) | person
            registered_at REAL NOT NULL,
            PRIMARY KEY (agent, session)
        );

        -- What `inboxd dispatch` last wrote to each path: a file whose content differs
        -- was edited by a person and is not overwritten without --force.
        CREATE TABLE dispatched_files (
            path TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            written_at REAL NOT NULL
        );
        """
    )


@migrations(name="0004_gemini")
def _gemini(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE gemini_jobs (
            id INTEGER PRIMARY KEY,
            stage TEXT NOT NULL,            -- judge
            scorer TEXT NOT NULL,           -- the judge's scorer name its results land under
            model TEXT NOT NULL,
            display_name TEXT NOT NULL UNIQUE,  -- derived from the work: found again by list
            name TEXT UNIQUE,               -- batches/<id>, once created
            input_file TEXT,                -- files/<id> of the uploaded JSONL
            state TEXT NOT NULL,            -- preparing | submitted | succeeded
                                            -- | partially_succeeded | failed | cancelled
                                            -- | expired
            remote_state TEXT,              -- the last JobState seen
            request_count INTEGER NOT NULL,
            estimated_usd REAL NOT NULL,
            cost_usd REAL,
            polls INTEGER NOT NULL DEFAULT 0,
            next_poll_at REAL,
            error TEXT,
            created_at REAL NOT NULL,
            submitted_at REAL,
            finished_at REAL
        );
        CREATE INDEX gemini_jobs_state ON gemini_jobs (state);

        CREATE TABLE gemini_job_items (
            job_id INTEGER NOT NULL REFERENCES gemini_jobs (id),
            key TEXT NOT NULL,              -- the request key in the JSONL (the pair hash)
            pair_hash TEXT NOT NULL,
            state TEXT NOT NULL,            -- pending | done | malformed | failed
            error TEXT,
            PRIMARY KEY (job_id, key)
        );
        CREATE INDEX gemini_job_items_pair ON gemini_job_items (pair_hash);

        CREATE TABLE gemini_calls (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            stage TEXT NOT NULL,            -- embed | judge | enhance
            model TEXT NOT NULL,
            mode TEXT NOT NULL,             -- interactive | batch
            job_id INTEGER REFERENCES gemini_jobs (id),
            requests INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            estimated INTEGER NOT NULL,     -- 1: tokens estimated, the API sent no usage
            cost_usd REAL NOT NULL
        );
        CREATE INDEX gemini_calls_stage ON gemini_calls (stage, model);

        CREATE TABLE gemini_unjudged (
            pair_hash TEXT NOT NULL,
            scorer TEXT NOT NULL,
            malformed INTEGER NOT NULL DEFAULT 0,   -- answers that failed validation
            reason TEXT NOT NULL,           -- why it is (back to) pending
            updated_at REAL NOT NULL,
            PRIMARY KEY (pair_hash, scorer)
        );

        CREATE TABLE gemini_budget_stops (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            stage TEXT NOT NULL,
            needed_usd REAL NOT NULL,       -- what the next step would have cost
            remaining_usd REAL NOT NULL
        );

        CREATE TABLE gemini_enhancements (
            pair_hash TEXT NOT NULL,        -- the original pair, kept as it is
            scorer TEXT NOT NULL,
            model TEXT NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            original_score REAL NOT NULL,
            new_score REAL,
            accepted INTEGER NOT NULL,      -- 1 only when the rewrite scored higher
            created_at REAL NOT NULL,
            PRIMARY KEY (pair_hash, scorer)
        );
        """
    )


@migrations(name="0005_intake")
def _intake(db: Database) -> None:
    db.executescript(
        """
        -- Files intake could not take (not a regular file, a link out of the root, a name
        -- that is not UTF-8, a status.txt count out of range...): one row per path while
        -- the problem lasts, shown by `inboxd status`.
        CREATE TABLE refused_files (
            path TEXT PRIMARY KEY,          -- relative to the root (non-UTF-8 bytes escaped)
            agent TEXT NOT NULL,
            reason TEXT NOT NULL,
            position TEXT,                  -- "line 1, column 20", "file name", ...
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL
        );

        -- Facts about this root's database. root_id: a random id that tells this root's
        -- remote jobs from another root's on the same API key.
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('root_id', lower(hex(randomblob(6))));
        """
    )


@migrations(name="0006_task_progress")
def _task_progress(db: Database) -> None:
    db.executescript(
        """
        -- What a process doing long work is doing now, for `inboxd status`: one row per
        -- worker (today the daemon's worker thread, "worker"), replaced as it goes,
        -- removed when it goes idle. Written at most a few times a second.
        CREATE TABLE task_progress (
            worker TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            task TEXT NOT NULL,             -- e.g. "embedding outbox/droid/rsi_qa_pairs.json"
            done INTEGER NOT NULL,
            total INTEGER,                  -- NULL: not known yet
            unit TEXT NOT NULL,             -- what done/total count: batches, pairs, steps
            detail TEXT NOT NULL,           -- a second measure, for people
            started_at REAL NOT NULL,       -- when this task began
            updated_at REAL NOT NULL
        );
        """
    )


@migrations(name="0007_files_taken")
def _files_taken(db: Database) -> None:
    db.executescript(
        """
        -- What each protocol file was when it was last taken: a rescan that finds the
        -- same size, mtime and sha256 skips the settle window (nothing to take).
        CREATE TABLE files_taken (
            path TEXT PRIMARY KEY,          -- relative to the root
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            taken_at REAL NOT NULL
        );
        """
    )
