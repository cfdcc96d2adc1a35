#!/usr/bin/env bash
# Rebuilds models/styles.json, the default style set, from the public-domain
# paintings in a folder (default: ../shared/images/style, see its SOURCES.md).
# Two "detail" styles are crops of a painting (ImageMagick `convert`): the
# network picks up different brushwork from a detail than from the whole.
set -euo pipefail
src=${1:-../shared/images/style}
out=${2:-models/styles.json}
bin=${STYLEFRAME_BIN:-target/release/styleframe}
models=${STYLEFRAME_MODELS:-../shared/models}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rm -f "$out"
e() { "$bin" embed "$1" --into "$out" --models "$models" --name "$2" --title "$3" --artist "$4"; }
e "$src/starry_night.jpg" starry_night "The Starry Night (1889)" "Vincent van Gogh"
e "$src/the_scream.jpg" the_scream "The Scream (1893)" "Edvard Munch"
e "$src/shipwreck.jpg" shipwreck "The Shipwreck of the Minotaur (c. 1810)" "J. M. W. Turner"
e "$src/Theo_van_Doesburg_sq.jpg" composition_xiii "Composition XIII (woman in studio) (1918)" "Theo van Doesburg"
e "$src/clouds-over-bor-1940_sq.jpg" clouds_over_bor "Clouds over Bor (1940)" "Paul Klee"
e "$src/Camille_Mauclair.jpg" mauclair_woodcut "Portrait of Camille Mauclair (woodcut)" "Félix Vallotton"
e "$src/zigzag_colorful.jpg" zigzag "Colourful chevrons (texture)" "public domain"
/usr/bin/convert "$src/starry_night.jpg" -gravity northwest -crop 50%x60%+0+0 +repage "$tmp/starry_sky.png"
e "$tmp/starry_sky.png" starry_sky "The Starry Night, detail: the sky (1889)" "Vincent van Gogh"
/usr/bin/convert "$src/the_scream.jpg" -gravity north -crop 100%x40%+0+0 +repage "$tmp/scream_sky.png"
e "$tmp/scream_sky.png" scream_sky "The Scream, detail: the sky (1893)" "Edvard Munch"
echo "wrote $out"
