module.exports = class IndexBig1767225600002 {
  name = 'IndexBig1767225600002';
  // TypeORM's default: migration:run runs every pending migration in one transaction.

  async up(queryRunner) {
    await queryRunner.query(`CREATE INDEX "big_account_idx" ON "big" ("account") `);
  }

  async down(queryRunner) {
    await queryRunner.query(`DROP INDEX "public"."big_account_idx"`);
  }
};
