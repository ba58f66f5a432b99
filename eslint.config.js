// Type-checked lint rules, plus the import fences that keep the architecture honest:
// core/ is pure, controller/ knows nothing about agents. Layout is dprint's job (dprint.json);
// the only layout rule here is the line limit, which dprint cannot enforce on strings and comments.
import jsdoc from 'eslint-plugin-jsdoc';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

// ---- BEGIN parallel-work exclusions (issue #14): files other helpers are rewriting. ----
// The TSDoc and line-length rules skip them until those branches merge. After the merge, delete
// this list (and the matching block in dprint.json), run `npm run format`, and fix what
// `npm run lint` still reports.
const PENDING_STYLE_PASS = [
  'src/reconciler/**',
  'src/adapters/**',
  'src/controller/**',
  'src/operator.ts',
  'src/ports.ts',
  'src/core/gates.ts',
  'src/core/approvals.ts',
  'src/core/ports*.ts',
  'src/core/tool-pod.ts',
  'src/api/mcp*.ts',
  '**/*mcp*',
];
// ---- END parallel-work exclusions ----

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
    // Every export of src/ says what it does; lines fit in 120 columns.
    files: ['src/**/*.ts'],
    ignores: PENDING_STYLE_PASS,
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
