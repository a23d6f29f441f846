"""`digitrec fonts`: fetch the handwriting fonts training mixes in (data.fonts), or list those fetched."""

from __future__ import annotations

from pathlib import Path

from digitrec.data.fonts import fetch_fonts, fonts_dir, load_fonts


def add_parser(sub) -> None:
    p = sub.add_parser("fonts", help="fetch the handwriting fonts (npm @fontsource, Debian) that --fonts trains on")
    p.add_argument("--dir", default=None,
                   help="the fonts folder (default $DIGITREC_FONTS, else ~/.cache/digitrec/fonts)")
    p.add_argument("--list", action="store_true",
                   help="list the fetched fonts, their source and licence; fetch nothing")
    p.set_defaults(run=run)


def run(args) -> int:
    folder = Path(args.dir) if args.dir else fonts_dir()
    fonts = load_fonts(folder) if args.list else fetch_fonts(folder)
    for font in fonts:
        print(f"{font.name:<28} {'held out' if font.held_out else 'training':<9} {font.licence:<14} {font.source}")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"{len(fonts)} fonts ({sum(f.held_out for f in fonts)} held out for cross-writer validation) in {folder}, "
          f"{size / 1e6:.1f} MB")
    return 0
