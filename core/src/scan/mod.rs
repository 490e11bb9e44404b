//! Camera frames and image files to QR codes: localisation, sampling and decoding with a per-frame
//! work budget.
