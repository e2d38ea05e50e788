-- Rolling execution: the plan (JSON, `{"batch": 5 | "10%", "mode": "continue" | "pause_on_failure"}`)
-- and when a rolling execution paused after a batch with a failure (NULL when not paused).
-- A paused execution is not claimed until it is resumed or cancelled.
ALTER TABLE executions ADD COLUMN rolling {{json}}{{also_alter executions}}ADD COLUMN paused_at {{instant}};
