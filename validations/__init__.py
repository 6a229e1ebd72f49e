"""Great Expectations suites per table, type coercion, the quarantine of failed rows and the validation report."""
