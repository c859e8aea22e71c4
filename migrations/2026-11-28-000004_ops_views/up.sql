-- Views for operators reading the service with SQL (documented in the README,
-- "Operating it"). Read-only: every repair goes through `upload-admin`.
CREATE SCHEMA ops;

-- Uploads waiting on background work (a scan, processing, the move of the item
-- they were submitted with) and unchanged for 15 minutes, with the jobs live for
-- them. Empty live_jobs: nothing will move it; `upload-admin requeue upload ID`.
CREATE VIEW ops.stuck_uploads AS
SELECT u.id,
       u.owner_id,
       u.state,
       u.updated_at,
       now() - u.updated_at AS unchanged_for,
       (SELECT string_agg(j.job_type || ' ' || j.status, ', ' ORDER BY j.run_at)
          FROM apalis.jobs j
         WHERE j.idempotency_key LIKE u.id::text || '#%'
           AND j.status IN ('Pending', 'Queued', 'Running')) AS live_jobs
  FROM uploads u
 WHERE u.state IN ('uploaded', 'scanning', 'processing', 'submitted')
   AND u.updated_at < now() - interval '15 minutes';

-- Submissions not settled (queued, persisted) and unchanged for 15 minutes.
CREATE VIEW ops.stuck_submissions AS
SELECT s.id,
       s.owner_id,
       s.item_id,
       s.state,
       s.updated_at,
       now() - s.updated_at AS unchanged_for,
       (SELECT string_agg(j.job_type || ' ' || j.status, ', ' ORDER BY j.run_at)
          FROM apalis.jobs j
         WHERE j.idempotency_key LIKE s.id::text || '#%'
           AND j.status IN ('Pending', 'Queued', 'Running')) AS live_jobs
  FROM item_submissions s
 WHERE s.state IN ('queued', 'persisted')
   AND s.updated_at < now() - interval '15 minutes';

-- Every job attempt that failed: its queue, subject (upload, submission or
-- notification id), attempt and error. A failed attempt is retried by a later row
-- of the same subject while attempts remain.
CREATE VIEW ops.failed_jobs AS
SELECT j.job_type AS queue,
       split_part(j.idempotency_key, '#', 1) AS subject,
       split_part(j.idempotency_key, '#', 2)::integer AS attempt,
       j.status,
       j.run_at,
       j.done_at,
       j.last_result ->> 'Err' AS error
  FROM apalis.jobs j
 WHERE j.status IN ('Failed', 'Killed');

-- Per queue: jobs ready to run, scheduled for later, running, and the age of the
-- oldest ready one (how far behind the workers are).
CREATE VIEW ops.queue_depth AS
SELECT j.job_type AS queue,
       count(*) FILTER (WHERE j.status IN ('Pending', 'Queued') AND j.run_at <= now()) AS ready,
       count(*) FILTER (WHERE j.status IN ('Pending', 'Queued') AND j.run_at > now()) AS scheduled,
       count(*) FILTER (WHERE j.status = 'Running') AS running,
       now() - min(j.run_at) FILTER (WHERE j.status IN ('Pending', 'Queued') AND j.run_at <= now())
           AS oldest_ready_age
  FROM apalis.jobs j
 WHERE j.status IN ('Pending', 'Queued', 'Running')
 GROUP BY j.job_type;
