module podline.dev/entrypoint

go 1.19
