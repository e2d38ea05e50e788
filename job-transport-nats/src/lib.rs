//! Everything the job platform does over NATS.
//!
//! It will hold the agent-mode transport (control side) and the `jobd agent` runtime, the NATS
//! open interfaces (`job_script_execute`, `job_file_distribute`, `job_task_terminate`,
//! `job_status_batch_query`, `job_detail_query`, `job_target_list`), the NATS event bus for
//! live output across nodes, and JetStream object-store blobs for clusters.
