# Helpers shared by every directory: tests and plugins.

# strata_add_test(NAME <name> SOURCES <src...> [LIBS <lib...>]
#                 [ENV <VAR=value...>] [LABELS <label...>] [TIMEOUT <s>])
# One cmocka executable = one ctest test, named after the executable.
function(strata_add_test)
	cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;ENV;LABELS" ${ARGN})
	add_executable(${T_NAME} ${T_SOURCES})
	target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
	set_target_properties(${T_NAME} PROPERTIES
		RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
	add_test(NAME ${T_NAME} COMMAND ${T_NAME})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 120)
	endif()
	set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT}
		ENVIRONMENT "STRATA_PLUGIN_DIR=${STRATA_PLUGIN_BUILD_DIR};STRATA_BUILD_DIR=${CMAKE_BINARY_DIR};STRATA_SOURCE_DIR=${CMAKE_SOURCE_DIR};${T_ENV}")
	if(T_LABELS)
		set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
	endif()
endfunction()

# strata_add_plugin(KIND <tier2|codec|connector> NAME <name>
#                   SOURCES <src...> [LIBS <lib...>])
# Builds <kind>-<name>.so into ${STRATA_PLUGIN_BUILD_DIR} with hidden
# visibility; only the entry symbol marked STRATA_PLUGIN_EXPORT is exported.
function(strata_add_plugin)
	cmake_parse_arguments(P "" "KIND;NAME" "SOURCES;LIBS" ${ARGN})
	set(target strata_${P_KIND}_${P_NAME})
	add_library(${target} MODULE ${P_SOURCES})
	target_link_libraries(${target} PRIVATE ${P_LIBS})
	set_target_properties(${target} PROPERTIES
		PREFIX ""
		OUTPUT_NAME ${P_KIND}-${P_NAME}
		LIBRARY_OUTPUT_DIRECTORY ${STRATA_PLUGIN_BUILD_DIR}
		C_VISIBILITY_PRESET hidden)
	# Unresolved symbols are a load-time surprise; catch them at link time.
	target_link_options(${target} PRIVATE -Wl,--no-undefined)
	install(TARGETS ${target} LIBRARY DESTINATION lib/strata/plugins)
endfunction()
