// Type-checked lint rules, plus the import fences that keep the architecture honest:
// core/ is pure, controller/ knows nothing about agents. Layout is dprint's job (dprint.json);
// the only layout rule here is the line limit, which dprint cannot enforce on strings and comments.
import jsdoc from 'eslint-plugin-jsdoc';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**', '.agentrun/**'] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // client-node declares its API types as classes, but plain objects are what it sends.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'pino', '../adapters/*', '../controller/*', '../observability/*'],
            message: 'core/ is pure: it may import only api/, other core/ modules and pure libraries.' },
          { group: ['@kubernetes/*', '@anthropic-ai/*'], allowTypeImports: true,
            message: 'core/ may use Kubernetes and SDK types, never their values (no I/O in core/).' },
        ],
      }],
    },
  },
  {
    files: ['src/controller/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['../api/*', '../core/*', '../adapters/*', '@anthropic-ai/*'],
            message: 'controller/ is a generic runtime: it must not know about agents.' },
        ],
      }],
    },
  },
  {
    // Ports hold: the reconciler and the plugin see the world through src/ports.ts and the typed
    // errors of src/port-errors.ts; only the composition root (src/operator.ts) knows adapters.
    files: ['src/reconciler/**/*.ts', 'src/plugin/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/adapters/*', '**/adapters/**'],
            message: 'reconciler/ and plugin/ use the ports (src/ports.ts, src/port-errors.ts); src/operator.ts wires adapters.' },
        ],
      }],
    },
  },
  {
    // Every export of src/ says what it does; lines fit in 120 columns.
    files: ['src/**/*.ts'],
    plugins: { jsdoc, '@stylistic': stylistic },
    rules: {
      'jsdoc/require-jsdoc': ['error', {
        publicOnly: { esm: true, cjs: false },
        require: { FunctionDeclaration: true, ClassDeclaration: true, ArrowFunctionExpression: false,
          FunctionExpression: false, MethodDefinition: false },
        contexts: [
          'TSInterfaceDeclaration',
          'TSEnumDeclaration',
          'ExportNamedDeclaration > VariableDeclaration',
          // A type derived from the value beside it (`z.infer<typeof schema>`, `(typeof X)[keyof typeof X]`)
          // is documented once, on that value: the schema is the source of truth.
          'TSTypeAliasDeclaration'
            + ":not([typeAnnotation.typeName.right.name='infer'])"
            + ":not([typeAnnotation.type='TSIndexedAccessType'][typeAnnotation.objectType.type='TSTypeQuery'])",
        ],
        enableFixer: false,
      }],
      'jsdoc/require-description': ['error', { contexts: ['any'] }],
      'jsdoc/no-blank-block-descriptions': 'error',
      'jsdoc/informative-docs': 'error',
      '@stylistic/max-len': ['error', { code: 120, tabWidth: 2, ignoreUrls: true }],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
