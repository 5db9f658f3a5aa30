# The vision tower's tests (included by tests/CMakeLists.txt when present):
# parity of every fixture in tests/fixtures/siglip on every kernel table, the
# GEMM and element-wise kernels against their scalar twins, and bad input.
gemma_unit_test(test_siglip unit/test_siglip.c)
set_tests_properties(test_siglip PROPERTIES LABELS "unit;parity")
# counts heap allocations: encoding must make none
target_link_options(test_siglip PRIVATE -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc)

# The MedGemma-shaped synthetic benchmark (not a test): build/tests/siglip_bench [threads] [layers]
add_executable(siglip_bench ${CMAKE_SOURCE_DIR}/bench/siglip_bench.c)
target_include_directories(siglip_bench PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(siglip_bench PRIVATE gemma_static)
