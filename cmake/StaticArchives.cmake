# vcra_link_static_archives(<regex>)
#
# Points every imported library target whose name matches <regex> at its static archive (the
# `.a` beside the `.so`, which Debian's -dev packages ship), so that executables carry only the
# parts of gRPC, protobuf and Abseil they call. Why: an agent linked against the shared libraries
# maps (and the kernel faults in) most of each one, and VmRSS counts those pages; see
# docs/design.md, "Linking gRPC statically". Targets without an archive stay shared.
function(vcra_link_static_archives name_regex)
  get_directory_property(imported IMPORTED_TARGETS)
  set(switched 0)
  foreach(target IN LISTS imported)
    if(NOT target MATCHES "${name_regex}")
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    if(NOT type STREQUAL "SHARED_LIBRARY" AND NOT type STREQUAL "UNKNOWN_LIBRARY")
      continue()
    endif()
    foreach(property IMPORTED_LOCATION IMPORTED_LOCATION_NONE IMPORTED_LOCATION_RELEASE
                     IMPORTED_LOCATION_RELWITHDEBINFO IMPORTED_LOCATION_DEBUG)
      get_target_property(location ${target} ${property})
      if(NOT location)
        continue()
      endif()
      string(REGEX REPLACE "\\.so(\\.[0-9.]+)?$" ".a" archive "${location}")
      if(NOT archive STREQUAL location AND EXISTS "${archive}")
        set_target_properties(${target} PROPERTIES ${property} "${archive}")
        math(EXPR switched "${switched} + 1")
      endif()
    endforeach()
  endforeach()
  message(STATUS "Static archives for ${switched} library locations matching ${name_regex}")
endfunction()
