# The SigLIP vision tower and Gemma 3 projector (src/models/siglip.c), its
# config (src/io/vision_config.c) and the blocked f32 GEMM it runs on
# (src/kernels/gemm.c).  Included by CMakeLists.txt when present.
list(APPEND GEMMA_SOURCES
  src/io/vision_config.c
  src/kernels/gemm.c
  src/models/siglip.c
)
