# vision_sources.cmake - image input and preprocessing (src/vision), included
# by CMakeLists.txt before its targets are made: it only adds sources and
# per-file flags.  stb_image is reached by a relative include from
# src/vision/stb_decode.c, the one file that compiles it.
list(APPEND GEMMA_SOURCES
  src/vision/stb_decode.c
  src/vision/jpeg_exact.c
  src/vision/image.c
  src/vision/resize.c
  src/vision/preprocess.c
)
list(APPEND GEMMA_CLI_EXTRA_SOURCES tools/gemma/cmd_preprocess.c)

# third-party code: its warnings are not ours to fix (this file only)
set_source_files_properties(src/vision/stb_decode.c PROPERTIES COMPILE_OPTIONS "-w")
# PIL's resize weights are computed in double in a fixed order; a fused
# multiply-add would round differently and move pixels by one level
set_source_files_properties(src/vision/resize.c PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
