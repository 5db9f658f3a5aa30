# vision_tests.cmake - image decoding and preprocessing tests (included by
# tests/CMakeLists.txt): the unit test against the PIL / Hugging Face
# fixtures, the `gemma preprocess` CLI test, and the image fuzzer.
gemma_unit_test(test_image unit/test_image.c)

add_test(NAME cli_preprocess COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_preprocess.sh $<TARGET_FILE:gemma>
         ${GEMMA_FIXTURES_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tmp)
set_tests_properties(cli_preprocess PROPERTIES LABELS cli)

if(GEMMA_FUZZ)
  add_executable(fuzz_image fuzz/fuzz_image.c)
  target_include_directories(fuzz_image PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_compile_options(fuzz_image PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_image PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_image PRIVATE gemma_static)
endif()
