ALTER INDEX resource_compartments RESET (fastupdate);
DROP STATISTICS idx_date_stats, idx_string_stats, idx_reference_stats, idx_token_stats;
