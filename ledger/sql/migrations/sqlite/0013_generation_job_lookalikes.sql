-- A result naming a job that differs only in case from the job another generation holds is
-- refused, never recorded on a generation charged without one: the compare-and-set looks
-- the job up by its lower-case form too (job ids are ASCII by then), through this index.
CREATE INDEX generations_provider_job_lower ON generations (provider, lower(provider_job_id))
    WHERE provider_job_id IS NOT NULL;
