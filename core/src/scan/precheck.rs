//! Cheap checks of a sampled module grid before it goes to rqrr: the timing patterns must mostly
//! alternate, one copy of the format information must be correctable (in either reading
//! direction, as rqrr also tries the mirrored grid), and a version 7+ grid's version blocks must
//! be near the word its size implies. rqrr's error correction costs milliseconds on a large grid
//! (twice when it also tries the mirror); these checks cost microseconds and refuse most grids
//! sampled from the wrong place or at the wrong size.

use rqrr::BitGrid;

/// The 15-bit format words as they appear in a code (BCH(15,5) codeword XOR the mask 0x5412),
/// for the 32 combinations of error correction level and mask.
fn format_words() -> [u16; 32] {
    let mut words = [0u16; 32];
    for (data, word) in (0u16..32).zip(words.iter_mut()) {
        let mut rem = data << 10;
        for bit in (10..15).rev() {
            if rem & (1 << bit) != 0 {
                rem ^= 0x537 << (bit - 10);
            }
        }
        *word = ((data << 10) | rem) ^ 0x5412;
    }
    words
}

/// Hamming distance from `bits` to the nearest format word.
fn format_distance(bits: u16, words: &[u16; 32]) -> u32 {
    words
        .iter()
        .map(|w| (w ^ bits).count_ones())
        .min()
        .unwrap_or(15)
}

/// A grid read as-is or transposed (rqrr decodes the mirror image too).
fn bit(grid: &impl BitGrid, y: usize, x: usize, mirrored: bool) -> bool {
    if mirrored {
        grid.bit(x, y)
    } else {
        grid.bit(y, x)
    }
}

/// The two copies of the format information, bit 14 first as in ISO/IEC 18004 (the same cells
/// rqrr reads).
fn format_copies(grid: &impl BitGrid, mirrored: bool) -> [u16; 2] {
    let n = grid.size();
    const XS: [usize; 15] = [8, 8, 8, 8, 8, 8, 8, 8, 7, 5, 4, 3, 2, 1, 0];
    const YS: [usize; 15] = [0, 1, 2, 3, 4, 5, 7, 8, 8, 8, 8, 8, 8, 8, 8];
    let mut first = 0u16;
    for (i, (&x, &y)) in XS.iter().zip(&YS).enumerate() {
        first |= u16::from(bit(grid, y, x, mirrored)) << i;
    }
    let mut second = 0u16;
    for i in 0..7 {
        second = (second << 1) | u16::from(bit(grid, n - 1 - i, 8, mirrored));
    }
    for i in 0..8 {
        second = (second << 1) | u16::from(bit(grid, 8, n - 8 + i, mirrored));
    }
    [first, second]
}

/// Bits of a copy of the format information that may be wrong for rqrr to still correct it.
const FORMAT_CORRECTABLE: u32 = 3;

/// Timing-pattern cells (row 6 and column 6 between the finders) that do not alternate, and how
/// many cells there are.
fn timing_mismatches(grid: &impl BitGrid) -> (usize, usize) {
    let n = grid.size();
    let mut wrong = 0;
    let mut total = 0;
    for i in 8..n.saturating_sub(8) {
        let dark = i % 2 == 0;
        wrong += usize::from(grid.bit(6, i) != dark) + usize::from(grid.bit(i, 6) != dark);
        total += 2;
    }
    (wrong, total)
}

/// The 18-bit version information word of a version 7–40 code.
fn version_word(version: usize) -> u32 {
    let v = u32::try_from(version).unwrap_or(0);
    let mut rem = v << 12;
    for bit in (12..18).rev() {
        if rem & (1 << bit) != 0 {
            rem ^= 0x1F25 << (bit - 12);
        }
    }
    (v << 12) | rem
}

/// Distance of the nearer of the two version blocks to the word the grid's size implies (0 for
/// versions below 7, which have none).
fn version_distance(grid: &impl BitGrid) -> u32 {
    let n = grid.size();
    if n < 45 {
        return 0;
    }
    let expected = version_word((n - 17) / 4);
    let mut top_right = 0u32;
    let mut bottom_left = 0u32;
    for i in 0..18 {
        let (a, b) = (i / 3, n - 11 + i % 3);
        top_right |= u32::from(grid.bit(a, b)) << i;
        bottom_left |= u32::from(grid.bit(b, a)) << i;
    }
    (top_right ^ expected)
        .count_ones()
        .min((bottom_left ^ expected).count_ones())
}

/// Version-block bits that may be wrong before a grid is refused (BCH(18,6) has distance 8; a
/// grid sampled elsewhere is ~9 bits off).
const VERSION_TOLERANCE: u32 = 4;

/// What the pre-check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Precheck {
    /// A copy of the format information is correctable (in the direction rqrr reads first or
    /// in the mirrored one).
    pub format: bool,
    /// The grid is worth rqrr's error correction.
    pub worth_decoding: bool,
}

/// Check a sampled grid (see the module documentation).
pub(crate) fn precheck(grid: &impl BitGrid) -> Precheck {
    let n = grid.size();
    if n < 21 {
        return Precheck {
            format: false,
            worth_decoding: false,
        };
    }
    let words = format_words();
    let readable = |mirrored: bool| {
        format_copies(grid, mirrored)
            .iter()
            .any(|&c| format_distance(c, &words) <= FORMAT_CORRECTABLE)
    };
    let format = readable(false) || readable(true);
    let (wrong, total) = timing_mismatches(grid);
    let timing = wrong * 3 <= total;
    let version = version_distance(grid) <= VERSION_TOLERANCE;
    Precheck {
        format,
        worth_decoding: format && timing && version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rqrr::SimpleGrid;

    fn grid_of(text: &str, version: i16) -> SimpleGrid {
        let code = qrcode::QrCode::with_version(
            text.as_bytes(),
            qrcode::Version::Normal(version),
            qrcode::EcLevel::M,
        )
        .unwrap();
        let n = code.width();
        let colors = code.to_colors();
        SimpleGrid::from_func(n, |x, y| colors[y * n + x] == qrcode::Color::Dark)
    }

    fn edited(grid: &SimpleGrid, f: impl Fn(usize, usize, bool) -> bool) -> SimpleGrid {
        SimpleGrid::from_func(grid.size(), |x, y| f(x, y, grid.bit(y, x)))
    }

    #[test]
    fn format_words_match_the_standard() {
        // ISO/IEC 18004 table C.1: level M mask 0 is 101010000010010, level H mask 7 is
        // 000100000111011 (bit 14 first).
        let words = format_words();
        assert!(words.contains(&0b101010000010010));
        assert!(words.contains(&0b000100000111011));
        assert_eq!(format_distance(0b101010000010010 ^ 0b111, &words), 3);
    }

    #[test]
    fn accepts_real_codes_of_several_versions() {
        for version in [1, 2, 6, 7, 10, 20] {
            let grid = grid_of("WG1:SH-000123", version);
            let p = precheck(&grid);
            assert!(p.format && p.worth_decoding, "version {version}: {p:?}");
            assert_eq!(version_distance(&grid), 0, "version {version}");
        }
    }

    #[test]
    fn accepts_the_mirror_image() {
        let grid = grid_of("WG1:machine:SH-2026-000123", 3);
        let mirrored = edited(&grid, |x, y, _| grid.bit(x, y));
        assert!(precheck(&mirrored).worth_decoding);
    }

    #[test]
    fn refuses_a_grid_with_both_format_copies_destroyed() {
        let grid = grid_of("WG1:machine:SH-2026-000123", 4);
        let n = grid.size();
        // Every cell of both format areas light: each copy then reads 0, which is 5 bits from
        // the nearest format word (inverting them would not do: the complement of a format word
        // is another format word).
        let broken = edited(&grid, |x, y, b| {
            let format_cell =
                (y == 8 && (x <= 8 || x >= n - 8)) || (x == 8 && (y <= 8 || y >= n - 7));
            if format_cell && x != 6 && y != 6 {
                false
            } else {
                b
            }
        });
        let p = precheck(&broken);
        assert!(!p.worth_decoding, "{p:?}");
        // One copy destroyed is still read from the other.
        let one = edited(&grid, |x, y, b| {
            let first = (y == 8 && x <= 8) || (x == 8 && y <= 8);
            if first && x != 6 && y != 6 { false } else { b }
        });
        assert!(precheck(&one).worth_decoding);
    }

    #[test]
    fn refuses_a_grid_with_broken_timing_or_wrong_size() {
        let grid = grid_of("WG1:machine:SH-2026-000123", 5);
        let broken = edited(&grid, |x, y, b| {
            if (x == 6 || y == 6) && (x + y) % 2 == 0 {
                !b
            } else {
                b
            }
        });
        assert!(!precheck(&broken).worth_decoding);
        // The same code sampled as four modules larger (a wrong size guess).
        let n = grid.size();
        let wrong = SimpleGrid::from_func(n + 4, |x, y| {
            let (sx, sy) = (x * n / (n + 4), y * n / (n + 4));
            grid.bit(sy, sx)
        });
        assert!(!precheck(&wrong).worth_decoding);
    }

    #[test]
    fn refuses_a_version_7_grid_with_both_version_blocks_destroyed() {
        let grid = grid_of("WG1:machine:SH-2026-000123", 8);
        let n = grid.size();
        let broken = edited(&grid, |x, y, b| {
            let block =
                (y < 6 && (n - 11..n - 8).contains(&x)) || (x < 6 && (n - 11..n - 8).contains(&y));
            if block { !b } else { b }
        });
        assert!(!precheck(&broken).worth_decoding);
    }
}
