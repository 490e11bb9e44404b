//! On-site inspections (逢查必核).
