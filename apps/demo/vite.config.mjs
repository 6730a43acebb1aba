import { defineConfig } from 'vite';

export default defineConfig({
  // Served at '/' by the standalone server and by `npm run sdk:demo`.
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2020' },
});
