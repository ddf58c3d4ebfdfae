DROP INDEX IF EXISTS small_v_idx;
