"""Handwriting fonts: fetched once from Debian's packages and npm's @fontsource packages, kept in a folder.

MNIST's 500-odd writers are all digitrec's handwriting knows; a font made from a person's writing is one
more writer. `fetch_fonts` asks the package clients (`apt-get download`, `npm pack`) for each font of
CATALOGUE, keeps its font file (and, for @fontsource families that have one, the Cyrillic subset: letters of
another script for the "not a digit" class) and writes a manifest (fonts.json: name, source, package,
version, licence, file, SHA-256). The folder is filled under a temporary name and renamed whole, so it is
never half-written. A font that cannot be fetched or read is named in one line and skipped.

The folder is $DIGITREC_FONTS, else fonts/ under the cache folder (`fonts_dir`). synth.writers draws from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

from digitrec.errors import DigitrecError
from digitrec.util.system import cache_dir

MANIFEST = "fonts.json"
MIN_FONTS = 20  # fewer fetched than this, and the mixture would teach a handful of writers: stop
# @fontsource handwriting families (Google Fonts, mostly OFL-1.1) and Debian font packages. The names are
# the fonts' names everywhere: the manifest, HELD_OUT, bench/writers.py.
NPM = ("caveat", "kalam", "indie-flower", "patrick-hand", "gochi-hand", "reenie-beanie", "homemade-apple",
       "nanum-pen-script", "shadows-into-light", "permanent-marker", "rock-salt", "covered-by-your-grace",
       "schoolbell", "cedarville-cursive", "sue-ellen-francisco", "annie-use-your-telescope", "delius", "handlee",
       "itim", "gloria-hallelujah", "architects-daughter", "amatic-sc", "caveat-brush", "nanum-brush-script",
       "sriracha", "mansalva", "the-girl-next-door", "short-stack", "neucha", "marck-script", "yellowtail",
       "satisfy", "pacifico", "dancing-script", "sacramento", "great-vibes", "allura", "cookie", "kaushan-script",
       "courgette", "comic-neue", "gaegu", "yomogi", "zen-kurenaido", "kiwi-maru", "swanky-and-moo-moo",
       "bad-script", "long-cang", "zhi-mang-xing", "ma-shan-zheng", "liu-jian-mao-cao")
# (fonts-femkeklaver is left out: its glyphs are outlines of strokes, not strokes, and an outlined 1 is two
# strokes to any reader)
DEBIAN = ("fonts-dkg-handwriting", "fonts-breip", "fonts-bwht", "fonts-humor-sans", "fonts-ecolier-court",
          "fonts-rufscript", "fonts-sjfonts", "fonts-kristi")
# The cross-writer validation set: fonts never trained on, the mixture is chosen on them (and on MNIST
# validation). A mix of print, rounded, narrow, brush and cursive hands.
HELD_OUT = ("indie-flower", "reenie-beanie", "homemade-apple", "nanum-pen-script", "schoolbell",
            "cedarville-cursive", "gochi-hand", "sriracha", "yellowtail", "dkg-handwriting")
FONT_SUFFIXES = (".ttf", ".otf", ".woff")
REGULAR = ("regular", "roman", "book", "medium", "normal")  # a family's plain style, by FreeType's name for it


@dataclass(frozen=True)
class Font:
    """One font of the folder: a writer."""

    name: str
    path: Path
    source: str  # "npm:@fontsource/caveat@5.3.0" or "debian:fonts-breip 1.0-3"
    licence: str
    other_script: Path | None = None  # the family's Cyrillic letters, when it has them

    @property
    def held_out(self) -> bool:
        return self.name in HELD_OUT


def fonts_dir() -> Path:
    """$DIGITREC_FONTS, else fonts/ under the cache folder (~/.cache/digitrec/fonts)."""
    return Path(os.environ.get("DIGITREC_FONTS") or cache_dir() / "fonts")


def load_fonts(folder: Path | None = None) -> list[Font]:
    """The fonts of a fetched folder (its manifest), or a one-line error saying how to fetch them."""
    folder = Path(folder or fonts_dir())
    try:
        entries = json.loads((folder / MANIFEST).read_text())["fonts"]
        return [Font(e["name"], folder / e["file"], e["source"], e["licence"],
                     folder / e["other_script"] if e.get("other_script") else None) for e in entries]
    except FileNotFoundError:
        raise DigitrecError(f"{folder}: no handwriting fonts fetched here; run `make fonts` (digitrec fonts) "
                            "or set DIGITREC_FONTS to a fetched folder", field="fonts") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DigitrecError(f"{folder / MANIFEST}: damaged font manifest ({e}); fetch again with "
                            "`digitrec fonts`", field="fonts") from None


def fonts_checksum(fonts: list[Font]) -> str:
    """One hash of the fonts' files: banks drawn from other fonts are not reused."""
    digest = hashlib.sha256()
    for font in fonts:
        digest.update(font.name.encode() + font.path.read_bytes())
    return digest.hexdigest()[:16]


def fetch_fonts(folder: Path | None = None, say: Callable[[str], None] = print, npm: tuple[str, ...] = NPM,
                debian: tuple[str, ...] = DEBIAN, least: int = MIN_FONTS) -> list[Font]:
    """Fetch every font of the catalogue into `folder` (whole, or not at all: with fewer than `least`
    fetched, the folder is left as it was); a font that cannot be fetched or read is named and skipped."""
    folder = Path(folder or fonts_dir())
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        entries = []
        for kind, names, fetch in (("npm", npm, _fetch_npm), ("debian", debian, _fetch_debian)):
            for name in names:
                try:
                    with tempfile.TemporaryDirectory(dir=work) as tmp:  # the package itself is not kept
                        entries += [_keep(found, work) for found in fetch(name, Path(tmp))]
                except (OSError, subprocess.SubprocessError, ValueError, KeyError, tarfile.TarError) as e:
                    say(f"font {kind}:{name}: skipped ({_one_line(e)})")
        if len(entries) < least:
            raise DigitrecError(f"only {len(entries)} handwriting fonts could be fetched (at least {least} "
                                "needed); are npm and apt-get able to reach their registries?", field="fonts")
        (work / MANIFEST).write_text(json.dumps({"fonts": entries}, indent=1))
        _replace_dir(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_fonts(folder)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1][:200] if text else type(e).__name__


def _replace_dir(new: Path, folder: Path) -> None:
    """Put `new` where `folder` is, the old one moved aside first and removed after."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise subprocess.SubprocessError(f"{' '.join(args[:2])} failed: {_one_line(Exception(done.stderr))}")
    return done.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keep(found: dict, work: Path) -> dict:
    """A fetched font's manifest entry, its files (in the package's temporary folder) checked readable and
    moved into `work`: a font FreeType cannot read raises OSError, and is skipped whole."""
    from PIL import ImageFont

    files = [Path(found[k]) for k in ("file", "other_script") if found.get(k)]
    for file in files:
        ImageFont.truetype(str(file), 40)
    for file in files:
        shutil.move(file, work / file.name)
    return {**found, "file": files[0].name, "sha256": _sha(work / files[0].name),
            "other_script": files[1].name if len(files) > 1 else None}


def _found(name: str, file: Path, source: str, licence: str, other: Path | None = None) -> dict:
    return {"name": name, "file": str(file), "source": source, "licence": licence,
            "other_script": str(other) if other else None}


def _fetch_npm(name: str, tmp: Path) -> list[dict]:
    """@fontsource/NAME: its Latin file of the regular weight (and Cyrillic subset, if any)."""
    tgz = tmp / _run(["npm", "pack", "--silent", f"@fontsource/{name}"], tmp).strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        meta = json.load(tar.extractfile("package/metadata.json"))
        version = json.load(tar.extractfile("package/package.json"))["version"]
        files = {Path(m.name).name: m for m in tar.getmembers() if m.name.endswith("-normal.woff")}
        latin = _pick(files, name, "latin")
        if latin is None:
            raise ValueError("no Latin .woff file in the package")
        out = {}
        for script, member in (("latin", latin), ("cyrillic", _pick(files, name, "cyrillic"))):
            if member is not None:
                out[script] = tmp / f"{name}-{script}.woff"
                out[script].write_bytes(tar.extractfile(files[member]).read())
    licence = (meta.get("license") or {}).get("type", "see package")
    return [_found(name, out["latin"], f"npm:@fontsource/{name}@{version}", licence, out.get("cyrillic"))]


def _pick(files: dict, name: str, script: str) -> str | None:
    """The subset's file of weight 400 if there is one, else its lightest weight."""
    prefix = f"{name}-{script}-"
    mine = sorted(f for f in files if f.startswith(prefix) and f[len(prefix):][:3].isdigit())
    regular = [f for f in mine if f"-{script}-400-" in f]
    return (regular or mine or [None])[0]


def _fetch_debian(package: str, tmp: Path) -> list[dict]:
    """A Debian font package: one writer per font family in it (its regular style; bold and italic files of
    the same hand are not other writers)."""
    _run(["apt-get", "download", "-q", package], tmp)
    deb = next(tmp.glob("*.deb"))
    _run(["dpkg-deb", "-x", deb.name, "root"], tmp)
    version = unquote(deb.stem.split("_")[1]) if deb.stem.count("_") >= 2 else "?"
    licence = _debian_licence(tmp / "root" / "usr" / "share" / "doc" / package / "copyright")
    families = _regular_per_family(sorted(p for p in (tmp / "root").rglob("*") if p.suffix.lower() in FONT_SUFFIXES))
    if not families:
        raise ValueError("no font file in the package")
    out = []
    base = package.removeprefix("fonts-")
    for family, path in families.items():
        name = base if len(families) == 1 else f"{base}-{family}"
        target = tmp / f"{name}{path.suffix.lower()}"
        shutil.copyfile(path, target)
        out.append(_found(name, target, f"debian:{package} {version}", licence))
    return out


def _regular_per_family(paths: list[Path]) -> dict[str, Path]:
    """{family (lower case, dashed): its regular file (else its first)} of the readable font files."""
    from PIL import ImageFont

    found: dict[str, list[tuple[str, Path]]] = {}
    for path in paths:
        try:
            family, style = ImageFont.truetype(str(path), 20).getname()
        except OSError:
            continue
        found.setdefault("-".join((family or path.stem).lower().split()), []).append(((style or "").lower(), path))
    return {family: min(files, key=lambda sp: (sp[0] not in REGULAR, sp[1].name))[1] for family, files in found.items()}


def _debian_licence(copyright_file: Path) -> str:
    """The first License: of a Debian copyright file (the fonts' own, before debian/*'s)."""
    try:
        for line in copyright_file.read_text(errors="replace").splitlines():
            if line.startswith("License:") and line.split(":", 1)[1].strip():
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "see the package's copyright file"
